"""Forward-backward spatial smoothing of a UPA / ULA covariance.

Coherent sources (correlation 1) make the source covariance rank one, so
the sample covariance has a single signal eigenvector and MUSIC cannot
separate them. Averaging the covariances of overlapping subarrays
(spatial smoothing) and of the conjugate-reversed array (forward-backward
averaging) restores the rank: with ``L`` subarrays the forward-backward
average decorrelates up to ``2 L`` coherent sources, at the price of a
smaller aperture (the subarray's).

On a UPA the element index is ``p * Q + q`` (:class:`ArrayGeometry`), so a
``(P', Q')`` subarray at offset ``(i, j)`` takes rows ``i..i+P'-1`` and
columns ``j..j+Q'-1`` of the element grid. Its manifold is that of a
``P' x Q'`` UPA up to a per-subarray phase, which cancels in ``a a^H``.
Forward-backward averaging ``(R + J R^* J) / 2`` (``J`` the exchange
matrix) needs a centro-symmetric array, which a UPA is.
"""
from typing import Tuple

import numpy as np

from engine_plugins.structures import ArrayGeometry


def subarray_shape(geometry: ArrayGeometry,
                   num_sources: int) -> Tuple[int, int]:
    """The largest subarray with at least ``K`` subarrays: enough for
    spatial smoothing alone to decorrelate ``K`` coherent sources, so the
    forward-backward average is a margin rather than a requirement (alone
    it fails for some phase relations between two coherent sources).

    For a ULA the subarray is ``(P - L + 1, 1)`` with ``L = K``; for a UPA
    both axes lose the same number of elements ``s`` with
    ``(s + 1)^2 >= K``.
    """
    if geometry.phi is not None:
        raise ValueError('spatial smoothing needs the physical array; an '
                         'RIS measurement manifold has no shift invariance')
    offsets = 1
    while offsets**geometry.angle_dims < num_sources:
        offsets += 1
    rows = geometry.rows - offsets + 1
    cols = geometry.cols - offsets + 1 if geometry.cols > 1 else 1
    return rows, cols


def fb_spatial_smoothing(cov: np.ndarray, geometry: ArrayGeometry,
                         sub_rows: int, sub_cols: int) -> np.ndarray:
    """Forward-backward spatially smoothed covariance of the
    ``sub_rows x sub_cols`` subarrays of ``geometry``.

    Args:
        cov: ``(P Q, P Q)`` covariance of the full array.
        geometry: The full array (no RIS).
        sub_rows, sub_cols: Subarray size (``sub_cols=1`` for a ULA).

    Returns:
        The ``(sub_rows sub_cols, sub_rows sub_cols)`` smoothed covariance,
        complex128, Hermitian.
    """
    rows, cols = geometry.rows, geometry.cols
    if not (1 <= sub_rows <= rows and 1 <= sub_cols <= cols):
        raise ValueError(f'subarray {sub_rows}x{sub_cols} does not fit the '
                         f'{rows}x{cols} array')
    grid = np.arange(rows * cols).reshape(rows, cols)
    cov = np.asarray(cov, dtype=np.complex128)
    smoothed = np.zeros((sub_rows * sub_cols, ) * 2, np.complex128)
    count = 0
    for i in range(rows - sub_rows + 1):
        for j in range(cols - sub_cols + 1):
            idx = grid[i:i + sub_rows, j:j + sub_cols].ravel()
            smoothed += cov[np.ix_(idx, idx)]
            count += 1
    smoothed /= count
    # J R^* J reverses both index orders of the conjugate.
    return 0.5 * (smoothed + smoothed.conj()[::-1, ::-1])
