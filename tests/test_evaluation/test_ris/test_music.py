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
    (dict(rows=4, cols=4, ris_measurements=24), [[5.5, 10.5], [-20.2,
                                                               -8.4]]),
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
    spectrum = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.5,
                         0.2, 0.1, 0.05])
    peaks = music.grid_peaks(spectrum, 3)
    # One local maximum (40 deg = -60 + 4 * 10), then the largest rest.
    np.testing.assert_array_equal(peaks[:, 0], [-20.0, -30.0, -10.0])


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
