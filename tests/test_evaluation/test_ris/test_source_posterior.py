"""The single-source posterior: its closed-form likelihood against a
direct evaluation of the Gaussian likelihood, and its mean in cases whose
answer is known by hand."""
import numpy as np
import pytest

from engine_plugins.datasets.ris.simulation import simulate_scene
from engine_plugins.evaluation.ris import (DMLSearch, MusicEstimator,
                                           SingleSourcePosterior,
                                           single_source_parameters)
from engine_plugins.structures import ArrayGeometry


def _posterior(geometry, step=1.0, **ranges):
    music = MusicEstimator(geometry, grid_step=step, **ranges)
    return SingleSourcePosterior(DMLSearch(music))


@pytest.mark.parametrize('geometry,step', [
    (ArrayGeometry(8, 1), 2.0),
    (ArrayGeometry(3, 3), 10.0),
    (ArrayGeometry(4, 4, ris_measurements=10), 10.0),
])
def test_log_likelihood_matches_the_gaussian_likelihood(geometry, step):
    """-T (log det R + tr(R^-1 R_hat)) with R = P a a^H + sigma^2 I,
    computed with slogdet and solve at every grid direction, differs from
    the closed form by one constant (the RIS manifold's a^H a varies, so
    the log det term matters there)."""
    rng = np.random.default_rng(0)
    scene = simulate_scene(geometry, rng, 1, 6, 0.0)
    cov, power, noise = scene['cov'], 1.7, 0.4
    posterior = _posterior(geometry, step)
    grid = posterior.search.music.grid
    a = geometry.steering(np.radians(grid))
    direct = []
    for g in range(len(grid)):
        r = power * np.outer(a[:, g], a[:, g].conj()) + noise * np.eye(
            geometry.dim)
        direct.append(
            -6 *
            (np.linalg.slogdet(r)[1] + np.trace(np.linalg.solve(r, cov)).real))
    closed = posterior.log_likelihood(cov, 6, power, noise)
    offset = np.asarray(direct) - closed
    np.testing.assert_allclose(offset, offset[0], rtol=0, atol=1e-8)
    assert np.ptp(closed) > 1.0  # the test compares a varying function


def test_uninformative_data_give_the_prior_mean():
    """A source far below the noise: the posterior is the uniform prior
    and its mean the centre of the search range, -10 deg for -60..40."""
    geometry = ArrayGeometry(8, 1)
    posterior = _posterior(geometry, az_range=(-60.0, 40.0))
    cov = simulate_scene(geometry, np.random.default_rng(1), 1, 4, 0.0)['cov']
    weights = posterior.weights(cov, 4, power=1e-9, noise_power=1.0)
    np.testing.assert_allclose(weights, 1 / 101, rtol=1e-6)
    assert posterior.mean(cov, 4, 1e-9, 1.0)[0, 0] == pytest.approx(
        -10.0, abs=1e-5)


def test_two_equally_likely_directions_average_to_their_midpoint():
    """R_hat equally explained by +-20 deg (a symmetric mixture): the MMSE
    estimate is the midpoint 0 deg, which the DML fit, picking one of the
    two, never returns."""
    geometry = ArrayGeometry(8, 1)
    posterior = _posterior(geometry, step=0.5)
    a = geometry.steering(np.radians([[-20.0], [20.0]]))
    cov = (a @ a.conj().T) / 2 + np.eye(8)
    weights = posterior.weights(cov, 16, power=1.0, noise_power=1.0)
    grid = posterior.search.music.grid[:, 0]
    assert weights[np.abs(np.abs(grid) - 20.0) <= 3.0].sum() > 0.9
    assert posterior.mean(cov, 16, 1.0, 1.0)[0, 0] == pytest.approx(
        0.0, abs=1e-9)
    dml = posterior.search(cov, 1)
    assert abs(dml[0, 0]) == pytest.approx(20.0)


def test_strong_source_gives_a_sharp_posterior_at_the_source():
    geometry = ArrayGeometry(8, 1)
    posterior = _posterior(geometry, step=0.1)
    scene = simulate_scene(
        geometry, np.random.default_rng(2), 1, 64, 20.0, az_range=(12.0, 12.5))
    p = float(scene['source_cov'][0, 0].real)
    mean = posterior.mean(scene['cov'], 64, p, float(scene['noise_power']))
    assert mean[0, 0] == pytest.approx(scene['angles'][0, 0], abs=0.1)


def test_parameters_of_an_ideal_covariance_are_exact():
    """R = P a a^H + sigma^2 I with P = 2, sigma^2 = 0.5 on 8 elements:
    c = 7 sigma^2 gives sigma^2, u^H R u = 8 P + sigma^2 gives P."""
    geometry = ArrayGeometry(8, 1)
    a = geometry.steering(np.radians([[17.0]]))
    cov = 2.0 * a @ a.conj().T + 0.5 * np.eye(8)
    power, noise = single_source_parameters(geometry, cov, [[17.0]])
    assert power == pytest.approx(2.0, rel=1e-12)
    assert noise == pytest.approx(0.5, rel=1e-12)
