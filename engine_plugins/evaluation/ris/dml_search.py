"""Global search of the deterministic maximum-likelihood (DML) directions
by alternating projection on a grid.

The DML estimate minimizes ``c(theta) = tr(Pi_A(theta)^perp R_hat)``
(:mod:`.fit_selection`) over all K directions jointly, a K * dims
dimensional search. Alternating projection (Ziskind and Wax's scheme)
searches one source at a time over the whole grid with the others fixed,
and repeats until no source moves, so every step lowers ``c`` and each
source's position is searched globally. MUSIC instead takes the peaks of
a spectrum computed from the K principal eigenvectors alone; with few
snapshots or at low SNR those eigenvectors carry much of the noise, and
the DML fit, which weighs all of ``R_hat``, resolves the sources far more
often.

For directions ``F`` held fixed (orthonormal basis ``Q`` of their span),
adding a unit-norm steering vector ``a`` explains
``(a^H R a - 2 Re(a^H R Q Q^H a) + a^H Q (Q^H R Q) Q^H a) / (1 - |Q^H a|^2)``
more of ``R``: the power of ``R`` along ``a``'s component outside the
span. ``R = V L V^H`` is factored once per covariance, keeping the
eigenvalues above ``1e-12`` of the largest (a sample covariance of ``T <
D`` snapshots has rank ``T``), and ``V^H A`` over the grid ``A`` is
computed once, so the search costs ``O(D G r)`` for ``G`` grid directions
and rank ``r``, then ``O(G (r + K) K)`` per step.
"""
from typing import Optional, Sequence

import numpy as np

from .music import MusicEstimator


class DMLSearch:
    """DML directions on a :class:`MusicEstimator`'s grid, by alternating
    projection (grid resolution; :func:`.fit_selection.refine_fit` takes
    them off the grid).

    Args:
        music: Supplies the grid and its unit-norm steering vectors.
        max_sweeps: Passes over the sources at most; a pass in which no
            source moves ends the search earlier.
        min_outside: A grid direction whose steering vector keeps less
            than this fraction of its power outside the span of the fixed
            directions is skipped: it nearly repeats one of them, and
            dividing by that small fraction would fit noise.

    Example:
        >>> search = DMLSearch(MusicEstimator(ArrayGeometry(8, 8)))
        >>> angles = search(cov, num_sources=2)  # (2, 2) grid degrees
    """

    def __init__(self,
                 music: MusicEstimator,
                 max_sweeps: int = 10,
                 min_outside: float = 0.05) -> None:
        self.music = music
        self.max_sweeps = max_sweeps
        self.min_outside = min_outside

    def gain(self, cov: np.ndarray, factor: tuple,
             fixed: Sequence[int]) -> np.ndarray:
        """Power of ``cov`` that each grid direction explains beyond the
        span of the grid directions ``fixed`` (indices), ``(G,)``;
        ``-inf`` where :attr:`min_outside` skips it.

        Args:
            cov: ``(D, D)`` covariance.
            factor: ``(values, vectors, projected, power)`` from
                :meth:`factor`.
            fixed: Grid indices of the directions held fixed.
        """
        values, vectors, projected, power = factor
        if not len(fixed):
            return power.copy()
        steering = self.music.grid_steering
        q, _ = np.linalg.qr(steering[:, list(fixed)])
        inner = q.conj().T @ steering  # Q^H a, (F, G)
        cross = (q.conj().T @ vectors * values) @ projected  # Q^H R a
        within = q.conj().T @ cov @ q
        gained = (
            power - 2 * np.einsum('fg,fg->g', cross.conj(), inner).real +
            np.einsum('fg,fh,hg->g', inner.conj(), within, inner).real)
        outside = 1.0 - np.einsum('fg,fg->g', inner.conj(), inner).real
        return np.where(outside > self.min_outside,
                        gained / np.maximum(outside, self.min_outside),
                        -np.inf)

    def factor(self, cov: np.ndarray) -> tuple:
        """``(values, vectors, V^H A, a^H R a)`` of ``cov`` on the grid,
        the eigenpairs above ``1e-12`` of the largest eigenvalue only."""
        values, vectors = np.linalg.eigh(cov)
        keep = values > 1e-12 * max(values[-1], 1e-300)
        values, vectors = values[keep], vectors[:, keep]
        projected = vectors.conj().T @ self.music.grid_steering
        power = values @ np.abs(projected)**2
        return values, vectors, projected, power

    def __call__(self,
                 cov: np.ndarray,
                 num_sources: int,
                 start: Optional[np.ndarray] = None) -> np.ndarray:
        """Grid directions ``(K, dims)`` (degrees) that minimize the DML
        criterion on ``cov`` by alternating projection.

        Args:
            cov: ``(D, D)`` sample covariance.
            num_sources: K.
            start: ``(K, dims)`` degrees to start from (snapped to the
                grid); None: the sources one by one, each at the grid
                direction that explains most beyond the ones before.
        """
        cov = np.asarray(cov, dtype=np.complex128)
        factor = self.factor(cov)
        if start is None:
            rows = []
            for _ in range(num_sources):
                rows.append(
                    int(np.argmax(self.gain(cov, factor, rows))))
        else:
            grid = self.music.grid
            start = np.atleast_2d(start)
            rows = [
                int(np.argmin(((grid - s)**2).sum(-1))) for s in start
            ][:num_sources]
        for _ in range(self.max_sweeps if num_sources > 1 else 0):
            moved = False
            for j in range(num_sources):
                others = rows[:j] + rows[j + 1:]
                best = int(np.argmax(self.gain(cov, factor, others)))
                if best != rows[j]:
                    rows[j], moved = best, True
            if not moved:
                break
        return self.music.grid[rows]
