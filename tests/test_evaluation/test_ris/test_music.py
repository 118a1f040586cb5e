"""MUSIC recovers directions from ideal covariances, and reaches the
bound where it is efficient."""
import numpy as np
import pytest

from engine_plugins.datasets.ris import simulate_scene
from engine_plugins.evaluation.ris import (MusicEstimator, crb_mse_deg2,
                                           matched_errors)
from engine_plugins.structures import ArrayGeometry


def _ideal(geo, angles_deg, noise=0.1):
    a = geo.steering(np.radians(angles_deg))
    return a @ a.conj().T + noise * np.eye(geo.dim)


@pytest.mark.parametrize('geometry,angles', [
    (dict(rows=8, cols=8), [[12.3, -4.7], [-33.1, 17.9], [40.6, 2.2]]),
    (dict(rows=12, cols=1), [[-10.0], [20.0], [0.37]]),
    (dict(rows=4, cols=4, ris_measurements=24), [[5.5, 10.5], [-20.2, -8.4]]),
])
def test_recovers_off_grid_angles(geometry, angles):
    geo = ArrayGeometry(**geometry)
    angles = np.array(angles)
    music = MusicEstimator(geo, grid_step=1.0)
    est = music.estimate(_ideal(geo, angles), len(angles))
    se, n = matched_errors(est, angles)
    assert np.sqrt(se / n) < 1e-3  # refined far below the 1 deg grid


def test_grid_only_is_within_half_a_step():
    geo = ArrayGeometry(8, 8)
    angles = np.array([[12.3, -4.7], [-33.1, 17.9]])
    music = MusicEstimator(geo, grid_step=1.0, refine=False)
    est = music.estimate(_ideal(geo, angles), 2)
    rows = matched_errors(est, angles)
    assert rows[0] <= 4 * 0.5**2 + 1e-9


def test_fewer_peaks_than_sources_are_filled():
    music = MusicEstimator(ArrayGeometry(4, 1), grid_step=10.0)
    spectrum = np.array(
        [1.0, 2.0, 3.0, 4.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.5, 0.2, 0.1, 0.05])
    peaks = music.grid_peaks(spectrum, 3)
    # One local maximum (40 deg = -60 + 4 * 10), then the largest rest.
    np.testing.assert_array_equal(peaks[:, 0], [-20.0, -30.0, -10.0])


def test_peaks_extend_the_estimate():
    geo = ArrayGeometry(8, 8)
    angles = np.array([[12.3, -4.7], [-33.1, 17.9]])
    cov = _ideal(geo, angles)
    music = MusicEstimator(geo, grid_step=1.0)
    peaks = music.peaks(cov, 2, 5)
    np.testing.assert_array_equal(
        peaks, music.grid_peaks(music.spectrum(cov, 2), 5))
    assert len({tuple(p) for p in peaks}) == 5
    refined = music.refine_peaks(cov, 2, peaks)
    np.testing.assert_array_equal(refined[:2], music.estimate(cov, 2))
    # Each stays inside its grid cell, one step either side.
    assert np.abs(refined - peaks).max() <= 1.0 + 1e-9
    assert np.abs(refined - peaks).max() > 0.1


def test_refinement_reaches_the_bound_for_one_source():
    """One source, 8x8 UPA, 20 dB, T = 32: MUSIC is efficient here, so a
    refinement that converges gives RMSE close to sqrt(CRB) (0.015 deg);
    one that stops early inside its grid cell does not (0.05 before the
    refinement got an explicit starting simplex)."""
    geo = ArrayGeometry(8, 8)
    music = MusicEstimator(geo, grid_step=1.0)
    rng = np.random.default_rng(5)
    se = crb = 0.0
    for _ in range(100):
        scene = simulate_scene(geo, rng, 1, 32, 20.0)
        se += matched_errors(music.estimate(scene['cov'], 1),
                             scene['angles'])[0]
        crb += 2 * crb_mse_deg2(geo, scene['angles'], scene['source_cov'],
                                float(scene['noise_power']), 32)
    assert np.sqrt(se / crb) < 1.25


@pytest.mark.parametrize('geometry', [
    dict(rows=8, cols=8),
    dict(rows=16, cols=1),
    dict(rows=8, cols=8, ris_measurements=32),
])
def test_null_spectrum_gradient_matches_central_differences(geometry):
    """The analytic gradient (per degree) against central differences of
    :meth:`null_spectrum`; in RIS mode ``|a|^2`` varies with the angle and
    its derivative changes the gradient by 10-40% here."""
    geo = ArrayGeometry(**geometry)
    music = MusicEstimator(geo)
    rng = np.random.default_rng(0)
    signal = music.signal_subspace(
        simulate_scene(geo, rng, 2, 8, 0.0)['cov'], 2)
    step = 1e-5  # degrees
    for x in rng.uniform([-60, -30], [60, 30], (5, 2))[:, :geo.angle_dims]:
        value, grad = music.null_spectrum_gradient(signal, x)
        assert value == pytest.approx(
            music.null_spectrum(signal, x[None])[0], abs=1e-14)
        shift = step * np.eye(geo.angle_dims)
        central = (music.null_spectrum(signal, x + shift) -
                   music.null_spectrum(signal, x - shift)) / (2 * step)
        np.testing.assert_allclose(grad, central, rtol=1e-6, atol=1e-10)


def test_refinement_reaches_the_minimum_of_the_cell():
    """One source, 8x8 UPA, 20 dB, T = 32: the refined null spectrum is
    not above its minimum over a dense grid of the refinement cell, nor
    over a 1e-4 deg grid around the estimate."""
    geo = ArrayGeometry(8, 8)
    music = MusicEstimator(geo, grid_step=1.0)
    rng = np.random.default_rng(11)
    for _ in range(20):
        scene = simulate_scene(geo, rng, 1, 32, 20.0)
        signal = music.signal_subspace(scene['cov'], 1)
        peak = music.grid_peaks(music.spectrum(scene['cov'], 1), 1)[0]
        est = music.estimate(scene['cov'], 1)[0]
        value = music.null_spectrum(signal, est[None])[0]
        for half, num in ((1.0, 101), (1e-3, 21)):
            centre = peak if half == 1.0 else est
            axes = [
                np.clip(np.linspace(c - half, c + half, num), lo, hi)
                for c, (lo, hi) in zip(centre, music.bounds)
            ]
            mesh = np.meshgrid(*axes, indexing='ij')
            dense = np.stack([m.ravel() for m in mesh], -1)
            assert value <= music.null_spectrum(signal, dense).min() + 1e-13


def test_refinement_leaves_the_edge_of_the_search_range():
    """A source 0.1-0.15 deg inside the elevation edge has its grid peak on
    the edge; the bounded refinement moves off it (a Nelder-Mead search
    whose simplex was clipped onto the edge stayed there)."""
    geo = ArrayGeometry(8, 8)
    music = MusicEstimator(geo, grid_step=1.0)
    for truth in ([20.3, -29.9], [-8.02, 29.85], [58.84, -29.9]):
        est = music.estimate(_ideal(geo, np.array([truth])), 1)
        np.testing.assert_allclose(est[0], truth, atol=1e-5)
