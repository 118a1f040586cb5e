"""The exact posterior of a single source's direction under the scene
model, and its mean: the estimate with the lowest mean squared error.

A single-source scene (:mod:`engine_plugins.datasets.ris.simulation`)
is ``x_t = a(theta) s_t + n_t`` with ``s_t ~ CN(0, P)`` and
``n_t ~ CN(0, sigma^2 I)``, so ``R(theta) = P a a^H + sigma^2 I``. With
``n^2 = a^H a``, ``det R = sigma^(2(D-1)) (sigma^2 + P n^2)`` and
``R^-1 = (I - kappa a a^H) / sigma^2`` with
``kappa = P / (sigma^2 + P n^2)``, so
``tr(R^-1 C) = (tr C - kappa a^H C a) / sigma^2`` for any ``C``.

* The sample covariance ``R_hat`` of ``T`` snapshots, in the units of
  ``P`` and ``sigma^2``, has ``log p(X | theta) = -T (log det R +
  tr(R^-1 R_hat))`` up to terms free of ``theta``.
* The dataset keeps only ``C = D R_hat / tr(R_hat)``: its scale is gone.
  Integrating the Gaussian density over the scale of ``X`` gives
  ``log p(C | theta) = -T log det R - D T log tr(R^-1 C)``, the same for
  any positive multiple of ``C`` (the default, ``scale_known=False``).

Up to terms free of ``theta`` these are::

    scale known:   T (kappa a^H C a / sigma^2 - log(sigma^2 + P n^2))
    scale unknown: -T log(sigma^2 + P n^2) - D T log(tr C - kappa a^H C a)

The dataset draws directions uniformly in degrees over the search box, so
on a uniform grid over that box the posterior is the softmax of the
log-likelihood, and its mean is the minimum-mean-squared-error (MMSE)
estimate: no estimator, learned or classical, has a lower mean squared
error over such scenes (up to the grid's resolution). That makes the
posterior mean the yardstick for what a network could add beside the DML
fit; ``benchmarks/bench_ris_bayes_headroom.py`` measures it. With ``P``
and ``sigma^2`` given it is an oracle; :func:`single_source_parameters`
gives their stochastic ML estimates from the data at a direction
estimate.
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
        search: Supplies the grid, the steering vectors' ``a^H a`` on it
            (``music.grid_norm2``) and the factored ``a^H R a`` of unit-norm
            steering vectors (:meth:`DMLSearch.factor`).

    Example:
        >>> music = MusicEstimator(ArrayGeometry(8, 8), grid_step=0.5)
        >>> posterior = SingleSourcePosterior(DMLSearch(music))
        >>> angle = posterior.mean(cov, snapshots=8, power=1.0,
        ...                        noise_power=10.0)  # (1, 2) degrees
    """

    def __init__(self, search: DMLSearch) -> None:
        self.search = search

    def log_likelihood(self,
                       cov: np.ndarray,
                       snapshots: int,
                       power: float,
                       noise_power: float,
                       scale_known: bool = False) -> np.ndarray:
        """``log p(data | theta)`` on the grid, ``(G,)``, up to a constant.

        Args:
            cov: ``(D, D)`` sample covariance.
            snapshots: T.
            power, noise_power: ``P`` and ``sigma^2`` (with
                ``scale_known=False`` only their ratio matters).
            scale_known: ``cov`` is the sample covariance in the units of
                ``P`` and ``sigma^2``; False: it is known up to a positive
                factor (the dataset's trace-normalized covariances).

        Returns:
            The log-likelihood of every grid direction.
        """
        cov = np.asarray(cov, dtype=np.complex128)
        norm2 = self.search.music.grid_norm2  # a^H a
        along = self.search.factor(cov)[3] * norm2  # a^H C a
        signal = noise_power + power * norm2
        kappa = power / signal
        if scale_known:
            return snapshots * (kappa * along / noise_power - np.log(signal))
        outside = np.trace(cov).real - kappa * along  # sigma^2 tr(R^-1 C)
        return -snapshots * (np.log(signal) + cov.shape[0] * np.log(outside))

    def weights(self,
                cov: np.ndarray,
                snapshots: int,
                power: float,
                noise_power: float,
                scale_known: bool = False) -> np.ndarray:
        """Posterior probabilities of the grid directions.

        Args:
            As :meth:`log_likelihood`.

        Returns:
            ``(G,)`` probabilities summing to 1.
        """
        log_p = self.log_likelihood(cov, snapshots, power, noise_power,
                                    scale_known)
        weights = np.exp(log_p - log_p.max())
        return weights / weights.sum()

    def mean(self,
             cov: np.ndarray,
             snapshots: int,
             power: float,
             noise_power: float,
             scale_known: bool = False) -> np.ndarray:
        """The posterior mean direction (the MMSE estimate).

        Args:
            As :meth:`log_likelihood`.

        Returns:
            ``(1, dims)`` degrees.
        """
        weights = self.weights(cov, snapshots, power, noise_power, scale_known)
        return (weights @ self.search.music.grid)[None]


def single_source_parameters(geometry: ArrayGeometry, cov: np.ndarray,
                             angle_deg: np.ndarray) -> Tuple[float, float]:
    """Stochastic ML estimates of ``P`` and ``sigma^2`` for one source at a
    given direction.

    ``sigma^2`` is the power of ``cov`` outside the steering vector per
    remaining dimension, ``c / (D - 1)``, and
    ``P = (u^H R u - sigma^2) / a^H a`` with ``u = a / |a|``, kept at
    least ``1e-6 sigma^2 / a^H a``.

    Args:
        geometry: The array.
        cov: ``(D, D)`` sample covariance.
        angle_deg: ``(1, dims)`` direction in degrees.

    Returns:
        ``(P, sigma^2)`` in the units of ``cov``.
    """
    cov = np.asarray(cov, dtype=np.complex128)
    a = geometry.steering(np.radians(np.atleast_2d(angle_deg)))[:, 0]
    norm2 = float(np.vdot(a, a).real)
    noise = residual_power(geometry, cov, angle_deg) / (cov.shape[0] - 1)
    along = float(np.vdot(a, cov @ a).real) / norm2
    return max(along - noise, 1e-6 * noise) / norm2, noise
