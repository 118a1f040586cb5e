"""Covariance losses for DoA networks.

Every function takes batched Hermitian matrices ``(B, D, D)`` and must run
in an FP32 loss region (``RISCovarianceNet`` does this): they refuse half
precision and complex32 rather than compute eigenvectors in it.
"""
from typing import Optional

import torch

from .stable_eigh import load_diagonal, stable_eigh

NARROW = (torch.float16, torch.bfloat16, torch.complex32)


def check_precision(**tensors: torch.Tensor) -> None:
    """Raise ``TypeError`` naming any tensor in half precision/complex32."""
    bad = [f'{k} ({v.dtype})' for k, v in tensors.items() if v.dtype in NARROW]
    if bad:
        raise TypeError(
            'covariance losses need float32/complex64 or wider inputs, got '
            f'{", ".join(bad)}: run them in an FP32 loss region '
            '(fp32_region casts predictions and labels)')


def signal_mask(values: torch.Tensor, num_sources: torch.Tensor):
    """(B, D) mask of the ``num_sources`` largest eigenvalues (ascending
    order from ``eigh``: the last K columns)."""
    dim = values.shape[-1]
    idx = torch.arange(dim, device=values.device)
    return (idx >= dim - num_sources[:, None]).to(values.dtype)


def projector(vectors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``U diag(mask) U^H``."""
    return (vectors * mask[:, None, :].to(vectors.dtype)) @ vectors.mH


def frobenius_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``||R - R*||_F^2 / ||R*||_F^2``, mean over the batch."""
    check_precision(pred=pred, target=target)
    err = (pred - target).abs().square().sum((-2, -1))
    return (err / target.abs().square().sum((-2, -1))).mean()


def predicted_projector(pred: torch.Tensor,
                        num_sources: torch.Tensor,
                        loading: float = 1e-3,
                        jitter: float = 1e-4,
                        gap_eps: float = 1e-4) -> torch.Tensor:
    """Signal-subspace projector of ``pred`` (its ``num_sources`` largest
    eigenvectors), differentiable through the stabilized ``eigh``."""
    check_precision(pred=pred)
    values, vectors = stable_eigh(load_diagonal(pred, loading, jitter),
                                  gap_eps)
    return projector(vectors, signal_mask(values, num_sources))


def steering_projector(steering: torch.Tensor,
                       valid: torch.Tensor) -> torch.Tensor:
    """``A (A^H A)^-1 A^H`` over the valid columns of ``steering``.

    For sources with a full-rank covariance this is exactly the signal
    subspace of the ideal covariance ``A P A^H + sigma^2 I``, without an
    eigendecomposition of the label.
    """
    check_precision(steering=steering)
    a = steering * valid[:, None, :].to(steering.dtype)
    # Padded columns are zero; a unit diagonal keeps the Gram invertible.
    gram = a.mH @ a + torch.diag_embed((~valid).to(steering.dtype))
    return a @ torch.linalg.solve(gram, a.mH)


def subspace_loss(pred_proj: torch.Tensor, target_proj: torch.Tensor,
                  num_sources: torch.Tensor) -> torch.Tensor:
    """``||P - P*||_F^2 / (2K)`` in [0, 1]: 0 when the signal subspaces
    coincide, 1 when they are orthogonal."""
    err = (pred_proj - target_proj).abs().square().sum((-2, -1))
    return (err / (2 * num_sources.to(err.dtype))).mean()


def music_loss(pred_proj: torch.Tensor,
               steering: torch.Tensor,
               valid: torch.Tensor,
               weight: Optional[torch.Tensor] = None) -> torch.Tensor:
    """MUSIC null spectrum ``a^H (I - P) a / a^H a`` at the true angles, in
    [0, 1]; 0 when every true direction lies in the signal subspace.

    Args:
        pred_proj: (B, D, D) predicted signal projector.
        steering: (B, D, K_max) steering vectors at the true angles.
        valid: (B, K_max) bool, real sources (the rest is padding).
    """
    a = steering / steering.norm(dim=-2, keepdim=True)
    captured = (a.conj() * (pred_proj @ a)).sum(-2).real  # a^H P a
    null = (1 - captured) * valid
    return null.sum() / valid.sum().clamp(min=1)
