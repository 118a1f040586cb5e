"""Stochastic (unconditional) Cramer-Rao bound and matched RMSE.

Stoica & Nehorai's stochastic CRB for Gaussian sources with unknown
covariance ``P`` and white noise ``sigma^2``, written for several angle
components per source (Stoica, Larsson, Gershman 2001)::

    CRB^-1 = (2T / sigma^2) Re{ (D^H Pi_A^perp D) .* (1 kron G^T) }
    G = P A^H R^-1 A P,   R = A P A^H + sigma^2 I

with ``D = [dA/d az, dA/d el]`` (``dim x dims*K``) and ``1`` the
``dims x dims`` matrix of ones. Parameters are ordered
``az_1..az_K, el_1..el_K``.
"""
from typing import Tuple

import numpy as np
from scipy.optimize import linear_sum_assignment

from engine_plugins.structures import ArrayGeometry


def stochastic_crb(geometry: ArrayGeometry, angles_deg: np.ndarray,
                   source_cov: np.ndarray, noise_power: float,
                   num_snapshots: int) -> np.ndarray:
    """The CRB of the angles in rad^2, ``(dims*K, dims*K)``.

    Args:
        geometry: The array.
        angles_deg: True directions, ``(K, dims)``.
        source_cov: ``P``, ``(K, K)``.
        noise_power: ``sigma^2`` (same scale as ``P``).
        num_snapshots: T.
    """
    rad = np.radians(np.atleast_2d(angles_deg))
    a = geometry.steering(rad)
    d = np.concatenate(list(geometry.steering_derivatives(rad)), axis=1)
    dim, k = a.shape
    r = a @ source_cov @ a.conj().T + noise_power * np.eye(dim)
    perp = np.eye(dim) - a @ np.linalg.solve(a.conj().T @ a, a.conj().T)
    g = source_cov @ a.conj().T @ np.linalg.solve(r, a) @ source_cov
    dims = geometry.angle_dims
    h = (d.conj().T @ perp @ d) * np.kron(np.ones((dims, dims)), g.T)
    fim = 2 * num_snapshots / noise_power * h.real
    return np.linalg.inv(fim)


def crb_mse_deg2(geometry: ArrayGeometry, angles_deg: np.ndarray,
                 source_cov: np.ndarray, noise_power: float,
                 num_snapshots: int) -> float:
    """Mean over sources and angle components of the CRB, in deg^2: the
    bound on the squared error that :func:`matched_errors` averages."""
    crb = stochastic_crb(geometry, angles_deg, source_cov, noise_power,
                         num_snapshots)
    return float(np.degrees(np.degrees(np.diag(crb))).mean())


def matched_source_errors(estimated: np.ndarray,
                          true: np.ndarray) -> np.ndarray:
    """Squared error (deg^2, summed over angle components) of each true
    source after Hungarian matching of estimated to true directions
    (scipy's ``linear_sum_assignment`` on the squared distance), ``(K,)``
    in the order of ``true``.

    Raises:
        ValueError: fewer estimates than sources.
    """
    estimated, true = np.atleast_2d(estimated), np.atleast_2d(true)
    cost = ((estimated[:, None] - true[None])**2).sum(-1)
    rows, cols = linear_sum_assignment(cost)
    if len(rows) < len(true):
        raise ValueError(f'{len(estimated)} estimates for {len(true)} '
                         'sources: cannot match every source')
    errors = np.empty(len(true))
    errors[cols] = cost[rows, cols]
    return errors


def matched_errors(estimated: np.ndarray,
                   true: np.ndarray) -> Tuple[float, int]:
    """Squared errors (deg^2) after Hungarian matching of estimated to
    true directions (:func:`matched_source_errors`).

    Returns:
        The sum of squared component errors and the number of components.
    """
    true = np.atleast_2d(true)
    return float(matched_source_errors(estimated, true).sum()), true.size
