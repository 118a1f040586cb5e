"""Switch from a reference DoA estimate (MUSIC's, or the global DML fit
of :mod:`.dml_search`) to a learned one only where the observed data
reject the reference.

The deterministic maximum-likelihood (DML) criterion for directions
``theta`` is the power of the sample covariance outside the span of their
steering vectors, ``c(theta) = tr(Pi_A(theta)^perp R_hat)``; the true
directions minimize its expectation for any source correlation, coherent
sources included. ``T (c(theta_a) - c(theta_b)) / sigma^2`` compares two
estimates in units of the noise power per snapshot: if ``theta_a`` is the
truth it exceeds ``chi^2_p / 2`` (``p`` real angle parameters,
``K * dims``) with probability about ``alpha`` at the ``1 - alpha``
quantile, and it grows with ``T * SNR`` when ``theta_a`` misses a source.

Where the reference works it is close to the DML minimizer and an
estimate a few tenths of a degree away explains the data about as well,
so choosing the better fit sample by sample would only add the noise of
the choice. The rule is therefore one-sided: the reference is kept unless
it explains the data worse than the learned estimate by more than the
``1 - alpha`` quantile, the signature of a gross error (a missed or
merged source, coherent sources for MUSIC, a search that stopped in the
wrong basin for the DML fit).

With ``m`` candidates (the learned covariance decoded in ``m`` ways) each
comparison runs at ``alpha / m`` (Bonferroni), so the rate of switching
away from a correct reference stays at most ``alpha``; among the
candidates that pass, the best fit wins.

A decoding may also offer more peaks than sources; :func:`best_subset`
then makes its candidate the ``K`` of them that explain ``R_hat`` best,
the DML estimate restricted to those peaks: in the threshold region (low
SNR, few snapshots) a noise peak can outrank a source's peak in a
spectrum while the data still fit the source better.

A candidate that wins was decoded from another covariance than ``R_hat``
(a learned one, or a smoothed one with a smaller aperture), so its
position carries that covariance's error. :func:`refine_fit` moves it to
the nearest minimum of ``c`` on ``R_hat`` itself, the local DML
estimate: the candidate picks the basin (the sources resolved), the data
pick the position, which only lowers ``c`` further.
"""
import itertools
from typing import Optional, Sequence, Tuple

import numpy as np
from scipy.optimize import minimize
from scipy.stats import chi2

from engine_plugins.structures import ArrayGeometry


def residual_power(geometry: ArrayGeometry, cov: np.ndarray,
                   angles_deg: np.ndarray) -> float:
    """``tr(Pi_A^perp R)``: the covariance's power outside the span of the
    steering vectors at ``angles_deg`` (``(K, dims)`` degrees)."""
    cov = np.asarray(cov, dtype=np.complex128)
    a = geometry.steering(np.radians(np.atleast_2d(angles_deg)))
    # An orthonormal basis of span(A): stable for close directions.
    q, _ = np.linalg.qr(a)
    return _outside_span(cov, q)


def _outside_span(cov: np.ndarray, basis: np.ndarray) -> float:
    """``tr(R) - tr(Q^H R Q)`` for an orthonormal ``basis`` Q."""
    explained = np.einsum('ik,ij,jk->', basis.conj(), cov, basis).real
    return float(np.trace(cov).real - explained)


def residual_power_gradient(geometry: ArrayGeometry, cov: np.ndarray,
                            angles_deg: np.ndarray) -> Tuple[float,
                                                             np.ndarray]:
    """``c = tr(Pi_A^perp R)`` at ``angles_deg`` (``(K, dims)`` degrees)
    and its gradient per degree, ``(K, dims)``.

    With ``P = A A^+``, ``dP = Pi^perp dA A^+ + (Pi^perp dA A^+)^H``, so
    ``dc/d theta_km = -2 Re [A^+ R Pi^perp D_m]_kk``, where column ``k`` of
    ``D_m`` is ``d a_k / d theta_km`` (only source ``k``'s steering vector
    depends on its angles).
    """
    cov = np.asarray(cov, dtype=np.complex128)
    angles = np.atleast_2d(np.asarray(angles_deg, dtype=np.float64))
    rad = np.radians(angles)
    a = geometry.steering(rad)
    derivatives = geometry.steering_derivatives(rad)  # (dims, D, K)
    q, r = np.linalg.qr(a)
    pseudo = np.linalg.solve(r, q.conj().T)  # A^+ = R^-1 Q^H
    left = pseudo @ cov  # A^+ R
    left = left - (left @ q) @ q.conj().T  # A^+ R Pi^perp
    grad = -2 * np.einsum('kd,mdk->km', left, derivatives).real
    return _outside_span(cov, q), np.radians(grad)


def noise_power(cov: np.ndarray, num_sources: int) -> float:
    """Mean of the ``D - K`` smallest eigenvalues of ``cov``."""
    values = np.linalg.eigvalsh(np.asarray(cov, dtype=np.complex128))
    return float(values[:len(values) - num_sources].mean())


def fit_excess(geometry: ArrayGeometry, cov: np.ndarray, candidate: np.ndarray,
               reference: np.ndarray, num_snapshots: int) -> float:
    """``T (c(candidate) - c(reference)) / sigma_hat^2``: how much worse
    ``candidate`` explains the sample covariance ``cov`` than
    ``reference``, in units of the noise power per snapshot."""
    k = len(np.atleast_2d(candidate))
    excess = (
        residual_power(geometry, cov, candidate) -
        residual_power(geometry, cov, reference))
    return num_snapshots * excess / max(noise_power(cov, k), 1e-300)


def select_candidate(geometry: ArrayGeometry,
                     cov: np.ndarray,
                     candidates: Sequence[np.ndarray],
                     reference: np.ndarray,
                     num_snapshots: int,
                     alpha: float = 0.05) -> Optional[int]:
    """Index of the candidate that replaces ``reference`` (the one whose
    fit the data prefer most, among those that reject ``reference`` at
    ``alpha / len(candidates)``), or None to keep ``reference``."""
    params = np.atleast_2d(reference).size
    threshold = 0.5 * chi2.ppf(1.0 - alpha / len(candidates), params)
    excess = [
        fit_excess(geometry, cov, reference, c, num_snapshots)
        for c in candidates
    ]
    best = int(np.argmax(excess))
    return best if excess[best] > threshold else None


def prefer_candidate(geometry: ArrayGeometry,
                     cov: np.ndarray,
                     candidate: np.ndarray,
                     reference: np.ndarray,
                     num_snapshots: int,
                     alpha: float = 0.05) -> bool:
    """Whether the data reject ``reference`` in favour of ``candidate`` at
    false-switch rate ``alpha`` (see the module docstring)."""
    return select_candidate(geometry, cov, [candidate], reference,
                            num_snapshots, alpha) is not None


def best_subset(geometry: ArrayGeometry,
                cov: np.ndarray,
                peaks: np.ndarray,
                num_sources: int,
                min_distance: float = 1.0) -> np.ndarray:
    """Indices (ascending) of the ``num_sources`` rows of ``peaks``
    (``(N, dims)`` degrees, ``N >= num_sources``) that minimize
    ``c = tr(Pi_A^perp R)`` on ``cov``; of equal fits the subset of
    earlier rows wins. Subsets with two directions closer than
    ``min_distance`` degrees are skipped: their steering vectors are
    nearly parallel and the span's second direction, fixed by rounding,
    would fit noise. If every subset is skipped, the first rows win.
    """
    peaks = np.atleast_2d(np.asarray(peaks, dtype=np.float64))
    if len(peaks) < num_sources:
        raise ValueError(f'best_subset: {len(peaks)} peaks for '
                         f'{num_sources} sources')
    # c = tr(R) - tr((A^H A)^-1 A^H R A): the Gram matrices of all peaks
    # once, then K x K blocks per subset (the distance rule keeps those
    # well conditioned).
    a = geometry.steering(np.radians(peaks))
    gram = a.conj().T @ a
    power = a.conj().T @ np.asarray(cov, dtype=np.complex128) @ a
    gaps = np.linalg.norm(peaks[:, None] - peaks[None], axis=-1)
    best, best_explained = np.arange(num_sources), -np.inf
    for rows in itertools.combinations(range(len(peaks)), num_sources):
        idx = np.ix_(rows, rows)
        if (gaps[idx][np.triu_indices(num_sources, 1)] < min_distance).any():
            continue
        explained = np.trace(np.linalg.solve(gram[idx], power[idx])).real
        if explained > best_explained:
            best, best_explained = np.array(rows), explained
    return best


def refine_fit(geometry: ArrayGeometry,
               cov: np.ndarray,
               start: np.ndarray,
               search_bounds: Sequence[Sequence[float]],
               radius: float = 2.0) -> np.ndarray:
    """The local minimizer of ``c(theta) = tr(Pi_A^perp R)`` nearest
    ``start`` (``(K, dims)`` degrees): every angle within ``radius``
    degrees of its start and inside ``search_bounds`` (one ``(low,
    high)`` per angle component). Returns ``start`` if the search finds
    no lower ``c``.
    """
    start = np.atleast_2d(np.asarray(start, dtype=np.float64))
    bounds = [(max(lo, x - radius), min(hi, x + radius))
              for row in start
              for x, (lo, hi) in zip(row, search_bounds)]

    def cost(x: np.ndarray) -> Tuple[float, np.ndarray]:
        value, grad = residual_power_gradient(geometry, cov,
                                              x.reshape(start.shape))
        return value, grad.ravel()

    # The analytic gradient: finite differences cost one evaluation of c
    # per angle parameter and step, ~5x the time for two sources in 2-D.
    res = minimize(
        cost,
        start.ravel(),
        jac=True,
        method='L-BFGS-B',
        bounds=bounds,
        options=dict(ftol=1e-15, gtol=1e-10, maxiter=200))
    if not res.fun < residual_power(geometry, cov, start):
        return start
    return res.x.reshape(start.shape)
