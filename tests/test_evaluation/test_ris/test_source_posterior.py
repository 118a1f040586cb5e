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


@pytest.mark.parametrize('scale_known', [True, False])
@pytest.mark.parametrize('geometry,step', [
    (ArrayGeometry(8, 1), 2.0),
    (ArrayGeometry(3, 3), 10.0),
    (ArrayGeometry(4, 4, ris_measurements=10), 10.0),
])
def test_log_likelihood_matches_the_gaussian_likelihood(
        geometry, step, scale_known):
    """With R = P a a^H + sigma^2 I computed at every grid direction and
    slogdet / solve: -T (log det R + tr(R^-1 C)) for a covariance in the
    units of P, sigma^2, and -T log det R - D T log tr(R^-1 C) for one
    known up to scale. Each differs from the closed form by one constant
    (the RIS manifold's a^H a varies, so the log det term matters
    there)."""
    rng = np.random.default_rng(0)
    scene = simulate_scene(geometry, rng, 1, 6, 0.0)
    cov, power, noise, dim = scene['cov'], 1.7, 0.4, geometry.dim
    posterior = _posterior(geometry, step)
    grid = posterior.search.music.grid
    a = geometry.steering(np.radians(grid))
    direct = []
    for g in range(len(grid)):
        r = power * np.outer(a[:, g], a[:, g].conj()) + noise * np.eye(dim)
        logdet = np.linalg.slogdet(r)[1]
        fit = np.trace(np.linalg.solve(r, cov)).real
        direct.append(-6 * (logdet + fit) if scale_known else -6 *
                      (logdet + dim * np.log(fit)))
    closed = posterior.log_likelihood(cov, 6, power, noise, scale_known)
    offset = np.asarray(direct) - closed
    np.testing.assert_allclose(offset, offset[0], rtol=0, atol=1e-8)
    assert np.ptp(closed) > 1.0  # the test compares a varying function


def test_unknown_scale_ignores_the_covariance_scale():
    geometry = ArrayGeometry(8, 1)
    posterior = _posterior(geometry)
    cov = simulate_scene(geometry, np.random.default_rng(3), 1, 4, -5.0)['cov']
    np.testing.assert_allclose(
        posterior.weights(cov, 4, 0.3, 0.7),
        posterior.weights(3.7 * cov, 4, 0.3, 0.7),
        rtol=1e-9)


def test_posterior_mean_has_the_lowest_mean_squared_error():
    """2000 single-source scenes drawn from the prior (8-element ULA,
    T = 4, -8 dB, where the maximum-likelihood direction is often a gross
    error): the posterior mean's MSE is below that of the likelihood's
    grid maximum (the DML fit's grid direction, for one source) and of the
    posterior means with the log-likelihood halved or doubled, by 6 to 8
    standard errors of the paired difference for the latter. A
    likelihood off by a factor would make one of those win."""
    geometry = ArrayGeometry(8, 1)
    posterior = _posterior(geometry)
    grid = posterior.search.music.grid[:, 0]
    rng = np.random.default_rng(0)
    sq = {name: [] for name in ('mean', 'half', 'double', 'argmax')}
    for _ in range(2000):
        scene = simulate_scene(geometry, rng, 1, 4, -8.0)
        log_p = posterior.log_likelihood(scene['cov'], 4,
                                         float(scene['source_cov'][0, 0].real),
                                         float(scene['noise_power']))
        true = scene['angles'][0, 0]
        for name, factor in (('mean', 1.0), ('half', 0.5), ('double', 2.0)):
            weights = np.exp(factor * (log_p - log_p.max()))
            sq[name].append((weights @ grid / weights.sum() - true)**2)
        sq['argmax'].append((grid[np.argmax(log_p)] - true)**2)
    mse = {name: np.mean(v) for name, v in sq.items()}
    for other in ('half', 'double', 'argmax'):
        diff = np.asarray(sq[other]) - np.asarray(sq['mean'])
        assert diff.mean() > 4 * diff.std() / np.sqrt(len(diff)), (other, mse)


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
