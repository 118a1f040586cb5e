"""``eigh`` with an eigen-gap-regularized backward, and diagonal loading.

The backward of ``torch.linalg.eigh`` divides by eigenvalue gaps
``lambda_j - lambda_i``: NaN/Inf for (near-)degenerate spectra, even in
fp64. For complex inputs it also checks that the loss
does not depend on the eigenvector phases with an absolute tolerance of
1e-2, which a GradScaler scale of 2^16 trips on rounding noise alone.

:class:`StableEigh` replaces ``1 / gap`` by ``gap / (gap^2 + eps^2)``
(a Lorentzian broadening): the same value when ``|gap| >> eps``, bounded by
``1 / (2 eps)`` otherwise. The phase-dependent part of the eigenvector
gradient (the imaginary diagonal of ``V^H dV``) is dropped, as the exact
backward does for a phase-invariant loss, without the check. Written here
because PyTorch has no regularized variant.
"""
from typing import Optional, Tuple

import torch


class StableEigh(torch.autograd.Function):
    """Hermitian eigendecomposition (ascending eigenvalues) whose backward
    is regularized with ``gap_eps``.

    Example:
        >>> values, vectors = StableEigh.apply(cov, 1e-4)
    """

    @staticmethod
    def forward(ctx, matrix: torch.Tensor,
                gap_eps: float) -> Tuple[torch.Tensor, torch.Tensor]:
        values, vectors = torch.linalg.eigh(matrix)
        ctx.save_for_backward(values, vectors)
        ctx.gap_eps = gap_eps
        return values, vectors

    @staticmethod
    def backward(ctx, grad_values: Optional[torch.Tensor],
                 grad_vectors: Optional[torch.Tensor]):
        values, vectors = ctx.saved_tensors
        vh = vectors.mH
        if grad_vectors is None:
            inner = torch.zeros_like(vectors)
        else:
            vhgv = vh @ grad_vectors
            # Skew-Hermitian part: the tangent space of the unitary group.
            inner = 0.5 * (vhgv - vhgv.mH)
            gap = values.unsqueeze(-2) - values.unsqueeze(-1)  # l_j - l_i
            inner = inner * (gap / (gap.square() + ctx.gap_eps**2))
        if grad_values is not None:
            inner = inner + torch.diag_embed(grad_values.to(inner.dtype))
        return vectors @ inner @ vh, None


def stable_eigh(matrix: torch.Tensor,
                gap_eps: float = 1e-4) -> Tuple[torch.Tensor, torch.Tensor]:
    """:class:`StableEigh` as a function; ``gap_eps <= 0`` gives plain
    ``torch.linalg.eigh``."""
    if gap_eps <= 0:
        return torch.linalg.eigh(matrix)
    return StableEigh.apply(matrix, gap_eps)


def load_diagonal(matrix: torch.Tensor, loading: float,
                  jitter: float) -> torch.Tensor:
    """``R + loading * I + diag(jitter * i / D)``, ``i = 0..D-1``.

    Loading bounds the smallest eigenvalue away from 0; the distinct
    jitter splits exactly repeated eigenvalues (e.g. the noise floor of a
    low-rank ``L L^H + eps I``) so eigenvectors are well defined.
    """
    dim = matrix.shape[-1]
    real = matrix.real.dtype if matrix.is_complex() else matrix.dtype
    diag = loading + jitter * torch.arange(
        dim, dtype=real, device=matrix.device) / dim
    return matrix + torch.diag_embed(diag.to(matrix.dtype))
