"""The exact posterior of a single source's direction under the scene
model, and its mean: the estimate with the lowest mean squared error.

A single-source scene (:mod:`engine_plugins.datasets.ris.simulation`)
is ``x_t = a(theta) s_t + n_t`` with ``s_t ~ CN(0, P)`` and
``n_t ~ CN(0, sigma^2 I)``, so ``R(theta) = P a a^H + sigma^2 I`` and, for
``T`` snapshots with sample covariance ``R_hat``,
``log p(X | theta) = -T (log det R(theta) + tr(R(theta)^-1 R_hat))``
plus terms free of ``theta``. With ``n^2 = a^H a``,
``det R = sigma^(2(D-1)) (sigma^2 + P n^2)`` and
``R^-1 = (I - P a a^H / (sigma^2 + P n^2)) / sigma^2``, hence, up to
such terms::

    log p(X | theta) = T (P a^H R_hat a / (sigma^2 (sigma^2 + P n^2))
                          - log(sigma^2 + P n^2))

The dataset draws directions uniformly in degrees over the search box, so
on a uniform grid over that box the posterior is the softmax of this
log-likelihood, and its mean is the minimum-mean-squared-error (MMSE)
estimate. No estimator, learned or classical, has a lower expected RMSE
on such scenes (up to the grid's resolution), which makes the posterior
mean the yardstick for what a network could add beside the DML fit;
``benchmarks/bench_ris_bayes_headroom.py`` measures that. With ``P`` and
``sigma^2`` given it is an oracle; :func:`single_source_parameters` gives
their stochastic ML estimates from the data at a direction estimate.
"""
from typing import Tuple

import numpy as np

from engine_plugins.structures import ArrayGeometry
from .dml_search import DMLSearch
from .fit_selection import residual_power


class SingleSourcePosterior:
    """The posterior of one source's direction on a DML search's grid
    (uniform prior over the grid's search box).

    Args:
        search: Supplies the grid, its unit-norm steering vectors and the
            factored ``a^H R a`` on it (:meth:`DMLSearch.factor`).

    Example:
        >>> music = MusicEstimator(ArrayGeometry(8, 8), grid_step=0.5)
        >>> posterior = SingleSourcePosterior(DMLSearch(music))
        >>> angle = posterior.mean(cov, snapshots=8, power=1.0,
        ...                        noise_power=10.0)  # (1, 2) degrees
    """

    def __init__(self, search: DMLSearch) -> None:
        self.search = search
        music = search.music
        # a^H a per grid direction: constant for a plain array, not for an
        # RIS's effective manifold.
        steering = music.geometry.steering(np.radians(music.grid))
        self.norm2 = np.linalg.norm(steering, axis=0)**2

    def log_likelihood(self, cov: np.ndarray, snapshots: int, power: float,
                       noise_power: float) -> np.ndarray:
        """``log p(X | theta)`` on the grid, ``(G,)``, up to a constant.

        Args:
            cov: ``(D, D)`` sample covariance.
            snapshots: T.
            power, noise_power: ``P`` and ``sigma^2`` in the units of
                ``cov``.
        """
        cov = np.asarray(cov, dtype=np.complex128)
        along = self.search.factor(cov)[3] * self.norm2  # a^H R_hat a
        signal = noise_power + power * self.norm2
        return snapshots * (
            power * along / (noise_power * signal) - np.log(signal))

    def weights(self, cov: np.ndarray, snapshots: int, power: float,
                noise_power: float) -> np.ndarray:
        """Posterior probabilities of the grid directions, ``(G,)``."""
        log_p = self.log_likelihood(cov, snapshots, power, noise_power)
        weights = np.exp(log_p - log_p.max())
        return weights / weights.sum()

    def mean(self, cov: np.ndarray, snapshots: int, power: float,
             noise_power: float) -> np.ndarray:
        """Posterior mean direction ``(1, dims)`` in degrees."""
        weights = self.weights(cov, snapshots, power, noise_power)
        return (weights @ self.search.music.grid)[None]


def single_source_parameters(geometry: ArrayGeometry, cov: np.ndarray,
                             angle_deg: np.ndarray) -> Tuple[float, float]:
    """Stochastic ML estimates of ``(P, sigma^2)`` for one source at
    ``angle_deg`` (``(1, dims)`` degrees): ``sigma^2`` is the power of
    ``cov`` outside the steering vector per remaining dimension,
    ``c / (D - 1)``, and ``P = (u^H R u - sigma^2) / a^H a`` with
    ``u = a / |a|``, kept above ``1e-6 sigma^2``."""
    cov = np.asarray(cov, dtype=np.complex128)
    a = geometry.steering(np.radians(np.atleast_2d(angle_deg)))[:, 0]
    norm2 = float(np.vdot(a, a).real)
    noise = residual_power(geometry, cov, angle_deg) / (cov.shape[0] - 1)
    along = float(np.vdot(a, cov @ a).real) / norm2
    return max(along - noise, 1e-6 * noise) / norm2, noise
