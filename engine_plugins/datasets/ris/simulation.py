"""One simulated DoA scene: ``X = A S + N``, ``R_hat = X X^H / T``.

Sources are zero-mean complex Gaussian with covariance ``P``
(``P_ij = rho sqrt(p_i p_j)``, ``P_ii = p_i``; ``rho = 1``: coherent
sources, scaled copies of one signal, as after multipath), noise is
white complex Gaussian with power ``sigma^2 = mean(p) / 10^(snr/10)``.
Both the sample covariance and the ideal one ``A P A^H + sigma^2 I`` are
divided by their own trace and multiplied by the dimension (mean diagonal
1); the source covariance and the noise power are scaled by the ideal
covariance's factor so that the CRB can be computed from them.
"""
from typing import Dict, Sequence, Tuple

import numpy as np

from engine_plugins.structures import ArrayGeometry


def sample_angles(rng: np.random.Generator,
                  num: int,
                  angle_dims: int,
                  az_range: Tuple[float, float] = (-60.0, 60.0),
                  el_range: Tuple[float, float] = (-30.0, 30.0),
                  min_separation: float = 5.0,
                  max_tries: int = 1000) -> np.ndarray:
    """``num`` directions in degrees, ``(num, angle_dims)``, pairwise at
    least ``min_separation`` degrees apart (Euclidean in az/el)."""
    lows = np.array([az_range[0], el_range[0]])[:angle_dims]
    highs = np.array([az_range[1], el_range[1]])[:angle_dims]
    for _ in range(max_tries):
        angles = rng.uniform(lows, highs, (num, angle_dims))
        dist = np.linalg.norm(angles[:, None] - angles[None], axis=-1)
        if num < 2 or dist[np.triu_indices(num, 1)].min() >= min_separation:
            return angles
    raise ValueError(
        f'could not place {num} sources {min_separation} deg apart in '
        f'az {az_range} / el {el_range} after {max_tries} tries')


def source_covariance(powers: np.ndarray, correlation: float) -> np.ndarray:
    """``P_ij = rho sqrt(p_i p_j)`` off the diagonal, ``p_i`` on it."""
    amp = np.sqrt(powers)
    cov = correlation * np.outer(amp, amp).astype(np.complex128)
    np.fill_diagonal(cov, powers)
    return cov


def simulate_scene(geometry: ArrayGeometry,
                   rng: np.random.Generator,
                   num_sources: int,
                   num_snapshots: int,
                   snr_db: float,
                   power_db_range: Sequence[float] = (0.0, 0.0),
                   correlation: float = 0.0,
                   **angle_kwargs) -> Dict[str, np.ndarray]:
    """Simulate one scene.

    Args:
        geometry: The array (and RIS).
        rng: Random generator (the scene is a function of its state).
        num_sources: K.
        num_snapshots: T.
        snr_db: Mean source power over noise power, in dB.
        power_db_range: Source powers are drawn uniformly in this dB range.
        correlation: Correlation coefficient between every source pair,
            in ``[0, 1]`` (1: coherent sources).
        **angle_kwargs: ``az_range``, ``el_range``, ``min_separation`` for
            :func:`sample_angles`.

    Returns:
        dict with ``cov`` (sample covariance, complex128 ``(dim, dim)``),
        ``cov_true`` (ideal covariance), ``angles`` (degrees,
        ``(K, angle_dims)``), ``source_cov`` ``(K, K)`` and ``noise_power``
        (both in the ideal covariance's normalization).
    """
    if not 0 <= correlation <= 1:
        raise ValueError(f'correlation must be in [0, 1], got {correlation}')
    angles = sample_angles(rng, num_sources, geometry.angle_dims,
                           **angle_kwargs)
    powers = 10**(rng.uniform(*power_db_range, num_sources) / 10)
    src_cov = source_covariance(powers, correlation)
    noise_power = powers.mean() / 10**(snr_db / 10)
    a = geometry.steering(np.radians(angles))
    if correlation < 1:
        chol = np.linalg.cholesky(src_cov)
    else:
        # P = amp amp^T is singular: every source carries the same signal.
        chol = np.zeros((num_sources, num_sources))
        chol[:, 0] = np.sqrt(powers)
    shape = (num_sources, num_snapshots)
    white = (rng.standard_normal(shape) +
             1j * rng.standard_normal(shape)) / np.sqrt(2)
    noise = (rng.standard_normal((geometry.dim, num_snapshots)) +
             1j * rng.standard_normal(
                 (geometry.dim, num_snapshots))) * np.sqrt(noise_power / 2)
    x = a @ (chol @ white) + noise
    cov = x @ x.conj().T / num_snapshots
    cov_true = a @ src_cov @ a.conj().T + noise_power * np.eye(geometry.dim)
    dim = geometry.dim
    scale = dim / np.trace(cov_true).real
    return dict(
        cov=cov * dim / np.trace(cov).real,
        cov_true=cov_true * scale,
        angles=angles,
        source_cov=src_cov * scale,
        noise_power=np.float64(noise_power * scale))
