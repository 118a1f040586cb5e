"""Array manifolds: uniform planar arrays (UPA), ULAs, and RIS measurements.

Conventions (written once, used by the simulation, the losses, MUSIC and
the CRB):

* Angles are ``(azimuth, elevation)`` in degrees at the data boundary and in
  radians inside :class:`ArrayGeometry`.
* The direction cosines are ``u = cos(el) sin(az)`` (along the P axis) and
  ``v = sin(el)`` (along the Q axis).
* Element ``(p, q)`` sits at ``d * (p, q)`` wavelengths, ``p < P``,
  ``q < Q``; its response is ``exp(j 2 pi d (p u + q v))``. The UPA
  steering vector is the Kronecker product ``a_P(u) kron a_Q(v)``, so the
  element index is ``p * Q + q``.
* A ULA is ``Q = 1``: only the azimuth is observable and angles have one
  component (elevation 0).
* RIS mode: a single receiver sees the surface through ``N`` measurement
  configurations with random unit-modulus phase profiles ``Phi`` (N x M),
  the model of the RIS literature ``y_n = phi_n^T a(theta) s + noise``. The
  effective manifold is ``Phi a(theta)``; ``Phi`` is drawn once from
  ``ris_seed`` so train, val and test share it.
"""
from typing import Optional

import numpy as np


def ula_response(num: int, cosine: np.ndarray,
                 spacing: float = 0.5) -> np.ndarray:
    """ULA responses ``exp(j 2 pi d n c)``, ``n = 0..num-1``.

    Args:
        num: Number of elements.
        cosine: Direction cosines, shape ``(K,)``.
        spacing: Element spacing in wavelengths.

    Returns:
        Complex array of shape ``(num, K)``.
    """
    n = np.arange(num)[:, None]
    return np.exp(2j * np.pi * spacing * n * np.asarray(cosine)[None, :])


class ArrayGeometry:
    """A P x Q UPA (``Q=1``: ULA), optionally seen through an RIS.

    Args:
        rows: P, elements along the ``u`` axis.
        cols: Q, elements along the ``v`` axis (1 for a ULA).
        spacing: Element spacing in wavelengths (0.5: no grating lobes).
        ris_measurements: N, the number of RIS phase configurations; None
            for a plain array.
        ris_seed: Seed of the RIS phase profiles.

    Example:
        >>> geo = ArrayGeometry(rows=8, cols=8)
        >>> geo.steering(np.radians([[10.0, 5.0]])).shape
        (64, 1)
    """

    def __init__(self,
                 rows: int = 12,
                 cols: int = 12,
                 spacing: float = 0.5,
                 ris_measurements: Optional[int] = None,
                 ris_seed: int = 0) -> None:
        if rows < 1 or cols < 1:
            raise ValueError(f'array size must be positive, got {rows}x{cols}')
        if rows == 1 and cols > 1:
            raise ValueError('a ULA is rows=M, cols=1 (the u axis)')
        self.rows, self.cols, self.spacing = rows, cols, spacing
        self.num_elements = rows * cols
        self.angle_dims = 2 if cols > 1 else 1
        self.phi = None
        if ris_measurements is not None:
            rng = np.random.default_rng(ris_seed)
            phases = rng.uniform(0, 2 * np.pi,
                                 (ris_measurements, self.num_elements))
            self.phi = np.exp(1j * phases) / np.sqrt(self.num_elements)
        self.dim = (
            self.num_elements if self.phi is None else ris_measurements)

    def _full(self, angles: np.ndarray) -> np.ndarray:
        """(K, angle_dims) radians -> (K, 2) azimuth, elevation."""
        angles = np.atleast_2d(np.asarray(angles, dtype=np.float64))
        if angles.shape[-1] != self.angle_dims:
            raise ValueError(
                f'angles must have {self.angle_dims} components for a '
                f'{self.rows}x{self.cols} array, got shape {angles.shape}')
        if self.angle_dims == 1:
            angles = np.concatenate([angles, np.zeros_like(angles)], -1)
        return angles

    def cosines(self, angles: np.ndarray):
        """Direction cosines ``(u, v)`` of ``(K, angle_dims)`` radians."""
        az, el = self._full(angles).T
        return np.cos(el) * np.sin(az), np.sin(el)

    def element_steering(self, angles: np.ndarray) -> np.ndarray:
        """Steering vectors of the physical elements, ``(M, K)``."""
        u, v = self.cosines(angles)
        a_p = ula_response(self.rows, u, self.spacing)
        a_q = ula_response(self.cols, v, self.spacing)
        # Column-wise Kronecker product: a_P(u_k) kron a_Q(v_k).
        return (a_p[:, None, :] * a_q[None, :, :]).reshape(
            self.num_elements, -1)

    def steering(self, angles: np.ndarray) -> np.ndarray:
        """Effective manifold (through the RIS if any), ``(dim, K)``."""
        a = self.element_steering(angles)
        return a if self.phi is None else self.phi @ a

    def steering_derivatives(self, angles: np.ndarray) -> np.ndarray:
        """``d steering / d angle`` per angle component (radians),
        ``(angle_dims, dim, K)``."""
        az, el = self._full(angles).T
        a = self.element_steering(angles)
        p = np.repeat(np.arange(self.rows), self.cols)[:, None]
        q = np.tile(np.arange(self.cols), self.rows)[:, None]
        k = 2j * np.pi * self.spacing
        # u = cos(el) sin(az), v = sin(el)
        du = [np.cos(el) * np.cos(az), -np.sin(el) * np.sin(az)]
        dv = [np.zeros_like(az), np.cos(el)]
        out = [k * (p * du[i] + q * dv[i]) * a
               for i in range(self.angle_dims)]
        if self.phi is not None:
            out = [self.phi @ d for d in out]
        return np.stack(out)

    def __repr__(self) -> str:
        ris = '' if self.phi is None else f', RIS N={self.dim}'
        return f'ArrayGeometry({self.rows}x{self.cols}, d={self.spacing}{ris})'
