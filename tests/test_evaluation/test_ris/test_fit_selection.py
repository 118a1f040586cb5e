"""The one-sided fit test that lets the network's estimate replace
MUSIC's: by hand on a 2-element ULA, its false-switch rate, and the DML
refinement of a replacement."""
import numpy as np
import pytest

from engine_plugins.datasets.ris.simulation import simulate_scene
from engine_plugins.evaluation.ris import (MusicEstimator, best_subset,
                                           crb_mse_deg2, fit_excess,
                                           matched_source_errors,
                                           prefer_candidate, refine_fit,
                                           residual_power,
                                           residual_power_gradient,
                                           select_candidate)
from engine_plugins.structures import ArrayGeometry

ULA2 = ArrayGeometry(2, 1)
# Eigenvalues 1 and 3; at az 0 the steering vector is (1, 1), at 90 deg
# (1, -1) (d = 1/2: phase pi sin(az)).
COV = np.array([[2.0, 1.0], [1.0, 2.0]], dtype=np.complex128)


def test_residual_power_by_hand():
    # (1, 1)/sqrt(2) explains (2 + 1 + 1 + 2) / 2 = 3 of the trace 4.
    assert residual_power(ULA2, COV, [[0.0]]) == pytest.approx(1.0)
    assert residual_power(ULA2, COV, [[90.0]]) == pytest.approx(3.0)
    # Two directions span the whole 2-D space.
    assert residual_power(ULA2, COV, [[0.0], [90.0]]) == pytest.approx(0.0)


def test_fit_excess_and_threshold_by_hand():
    # Noise power (K = 1): the smaller eigenvalue, 1. T = 10:
    # 10 * (3 - 1) / 1 = 20.
    assert fit_excess(ULA2, COV, [[90.0]], [[0.0]], 10) == pytest.approx(20)
    # Threshold for p = 1 parameter at alpha = 0.05: chi2_1 0.95 quantile
    # 3.8415 / 2 = 1.9207; T = 1 gives 2.0 (switch), T = 0.95 gives 1.9.
    assert prefer_candidate(ULA2, COV, [[0.0]], [[90.0]], 1, alpha=0.05)
    assert not prefer_candidate(ULA2, COV, [[0.0]], [[90.0]], 0.95, alpha=0.05)
    # Never away from the better fit.
    assert not prefer_candidate(ULA2, COV, [[90.0]], [[0.0]], 1000)


def test_several_candidates_share_alpha_and_the_best_fit_wins():
    # Two candidates: each comparison at alpha / 2, threshold
    # chi2_1 0.975 quantile 5.0239 / 2 = 2.512. [[0]] beats [[90]] by
    # T * (3 - 1) / 1 = 2T: T = 1.2 (2.4) keeps the reference, T = 1.3
    # (2.6) switches; a single candidate switches already at T = 1.
    worse, better = [[90.0]], [[0.0]]
    assert select_candidate(ULA2, COV, [worse, better], worse, 1.2) is None
    assert select_candidate(ULA2, COV, [worse, better], worse, 1.3) == 1
    assert select_candidate(ULA2, COV, [better], worse, 1.0) == 0
    # Between two passing candidates the better fit wins: [[10]] explains
    # 2 + cos(pi sin 10 deg) = 2.855 of the trace, [[0]] explains 3.
    assert select_candidate(ULA2, COV, [better, [[10.0]]], worse, 100) == 0
    assert select_candidate(ULA2, COV, [[[10.0]], better], worse, 100) == 1


def test_best_subset_by_hand():
    # One source: the peak with the smallest residual (1 at az 0, 1.145 at
    # 10 deg, 3 at 90 deg; see above), wherever it is in the list.
    np.testing.assert_array_equal(
        best_subset(ULA2, COV, [[90.0], [10.0], [0.0]], 1), [2])
    # Two sources in an ideal covariance A A^H + 0.1 I (8-element ULA):
    # the true pair leaves only the noise, 0.1 (8 - 2) = 0.6, the least any
    # two directions can leave (the sum of the 6 smallest eigenvalues).
    geo = ArrayGeometry(8, 1)
    a = geo.steering(np.radians([[-20.0], [25.0]]))
    cov = a @ a.conj().T + 0.1 * np.eye(8)
    peaks = np.array([[50.0], [-20.0], [5.0], [25.0]])
    rows = best_subset(geo, cov, peaks, 2)
    np.testing.assert_array_equal(rows, [1, 3])
    assert residual_power(geo, cov, peaks[rows]) == pytest.approx(0.6)
    # A pair closer than min_distance is never a subset; if every pair is,
    # the first rows win.
    near = np.array([[-20.0], [-19.5], [50.0]])
    np.testing.assert_array_equal(
        best_subset(geo, cov, near, 2, min_distance=1.0), [0, 2])
    np.testing.assert_array_equal(
        best_subset(geo, cov, near[:2], 2, min_distance=1.0), [0, 1])
    with pytest.raises(ValueError, match='1 peaks for 2 sources'):
        best_subset(geo, cov, [[0.0]], 2)


def test_truth_rarely_displaces_a_working_music():
    """Where MUSIC works, even the true directions do not replace its
    estimate more often than about alpha: MUSIC is close to the best fit
    of the sample covariance."""
    geo = ArrayGeometry(8, 1)
    music = MusicEstimator(geo, grid_step=0.5)
    rng = np.random.default_rng(0)
    switched, trials = 0, 200
    for _ in range(trials):
        angles = np.array([[-20.0], [25.0]]) + rng.uniform(-5, 5, (2, 1))
        a = geo.steering(np.radians(angles))
        s = (rng.standard_normal((2, 32)) + 1j * rng.standard_normal(
            (2, 32))) / np.sqrt(2)
        n = (rng.standard_normal((8, 32)) + 1j * rng.standard_normal(
            (8, 32))) * np.sqrt(0.5 / 2)
        x = a @ s + n
        cov = x @ x.conj().T / 32
        switched += prefer_candidate(
            geo, cov, angles, music.estimate(cov, 2), 32, alpha=0.05)
    assert switched / trials <= 0.05


def test_a_missed_source_is_rejected():
    """MUSIC's estimate with a source merged away explains the data much
    worse than the truth, at an SNR where that is a gross error."""
    geo = ArrayGeometry(8, 1)
    angles = np.array([[-20.0], [25.0]])
    a = geo.steering(np.radians(angles))
    cov = a @ a.conj().T + 0.1 * np.eye(8)
    merged = np.array([[-20.0], [-19.0]])
    assert prefer_candidate(geo, cov, angles, merged, 16, alpha=1e-6)


@pytest.mark.parametrize('geometry', [
    ArrayGeometry(8, 1),
    ArrayGeometry(8, 8),
    ArrayGeometry(4, 4, ris_measurements=10)
])
def test_residual_power_gradient_matches_central_differences(geometry):
    """The analytic gradient refine_fit uses, against central differences
    of residual_power (step 1e-6 deg), on a rank-6 sample covariance; in
    RIS mode through the measurement matrix."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((geometry.dim, 6)) +
         1j * rng.standard_normal((geometry.dim, 6)))
    cov = x @ x.conj().T / 6
    angles = np.array([[10.0, 5.0], [-20.0, -12.0]])[:, :geometry.angle_dims]
    value, grad = residual_power_gradient(geometry, cov, angles)
    assert value == pytest.approx(residual_power(geometry, cov, angles))
    numeric = np.zeros_like(grad)
    for i in np.ndindex(*angles.shape):
        step = np.zeros_like(angles)
        step[i] = 1e-6
        numeric[i] = (residual_power(geometry, cov, angles + step) -
                      residual_power(geometry, cov, angles - step)) / 2e-6
    assert np.abs(grad).max() > 1e-2  # not at a stationary point
    np.testing.assert_allclose(grad, numeric, atol=1e-6)


def test_refine_fit_finds_the_minimum_near_the_start():
    # Ideal covariance: c is minimal (the noise power times D - K) exactly
    # at the true directions.
    geo = ArrayGeometry(8, 8)
    truth = np.array([[10.0, -5.0], [14.0, 3.0]])
    a = geo.steering(np.radians(truth))
    cov = a @ a.conj().T + 0.01 * np.eye(64)
    start = truth + [[0.6, -0.4], [-0.5, 0.7]]
    bounds = [(-60, 60), (-30, 30)]
    est = refine_fit(geo, cov, start, bounds, radius=2.0)
    np.testing.assert_allclose(est, truth, atol=1e-4)
    assert residual_power(geo, cov, est) == pytest.approx(62 * 0.01)
    # Too small a radius: stays within it, on the way to the truth.
    est = refine_fit(geo, cov, start, bounds, radius=0.1)
    assert np.abs(est - start).max() <= 0.1 + 1e-12
    assert residual_power(geo, cov, est) < residual_power(geo, cov, start)
    # Already at the minimum: stays there (to rounding).
    np.testing.assert_allclose(
        refine_fit(geo, cov, truth, bounds), truth, atol=1e-9)


def test_refine_fit_reaches_the_bound_for_coherent_sources():
    """Coherent pairs at 20 dB: from starts a few tenths of a degree off
    (the error of a smoothed or learned covariance) to within 1.2x of
    sqrt(CRB) on the sample covariance."""
    geo = ArrayGeometry(8, 8)
    rng = np.random.default_rng(0)
    sq_err = sq_crb = 0.0
    for _ in range(30):
        scene = simulate_scene(geo, rng, 2, 32, 20.0, correlation=1.0,
                               az_range=(-60, 60), el_range=(-30, 30),
                               min_separation=5.0)
        truth = scene['angles']
        start = truth + rng.uniform(-0.4, 0.4, truth.shape)
        est = refine_fit(geo, scene['cov'], start, [(-60, 60), (-30, 30)])
        sq_err += matched_source_errors(est, truth).sum()
        sq_crb += 4 * crb_mse_deg2(geo, truth, scene['source_cov'],
                                   float(scene['noise_power']), 32)
    # The starts alone are ~0.23 deg off; sqrt(CRB) here is ~0.017.
    assert np.sqrt(sq_err / sq_crb) < 1.2
