"""Covariance losses for DoA networks.

Every function takes batched Hermitian matrices ``(B, D, D)`` and must run
in an FP32 loss region (``RISCovarianceNet`` does this): they refuse half
precision and complex32 rather than compute eigenvectors in it.
"""
from typing import Optional

import torch

from engine_plugins.engine.sanity import health
from engine_plugins.engine.sanity.errors import PrecisionError
from engine_plugins.engine.sanity.health import HealthStat
from .stable_eigh import load_diagonal, stable_eigh

NARROW = (torch.float16, torch.bfloat16, torch.complex32)

# The gaps are published for a plain eigh only: its backward divides by
# them. The gap-regularized backward (stabilize=True) bounds the division.
SIGNAL_GAP = HealthStat(
    'health/ris_signal_gap',
    low=1e-4,
    cause='precision',
    meaning='the estimate does not separate the signal eigenvalues from '
    'the noise ones (gap relative to the largest eigenvalue), and a plain '
    'eigh backward divides by this gap; use stabilize=True')
MIN_GAP = HealthStat(
    'health/ris_min_eigen_gap',
    low=1e-6,
    cause='precision',
    meaning='(near-)repeated eigenvalues under a plain eigh: its backward '
    'divides by every eigenvalue gap; add diagonal loading and jitter and '
    'use the gap-regularized eigh (stabilize=True)')
POWERLESS_LABELS = HealthStat(
    'health/ris_powerless_labels',
    low=0.0,
    high=0.2,
    cause='target_units',
    meaning='in many samples a labelled direction carries no more power '
    'than an average element of the input covariance: the labels do not '
    'point at the sources (angles in radians where degrees are expected, a '
    'source count that counts noise, another array geometry)',
    fraction=True)
INPUT_TRACE = HealthStat(
    'health/ris_input_trace',
    low=0.99,
    high=1.01,
    cause='input_normalization',
    meaning='the input sample covariances are not trace-normalized to the '
    'array dimension (mean diagonal 1), which the network and the residual '
    'start assume')
LABEL_TRACE = HealthStat(
    'health/ris_label_trace',
    low=0.99,
    high=1.01,
    cause='target_units',
    meaning='the label covariances are not trace-normalized to the array '
    'dimension like the inputs and predictions: the Frobenius term pulls '
    'the estimate to a wrong noise floor')
COND = HealthStat(
    'health/ris_cond',
    low=1.0,
    high=1e6,
    cause='precision',
    meaning='the estimate is too ill-conditioned for float32 solve/eigh in '
    'the loss (condition number x float32 eps approaches 1); raise the '
    'diagonal loading or use loss_dtype=float64')


def check_precision(**tensors: torch.Tensor) -> None:
    """Raise :class:`PrecisionError` (a ``TypeError``) naming any tensor in
    half precision/complex32."""
    bad = [f'{k} ({v.dtype})' for k, v in tensors.items() if v.dtype in NARROW]
    if bad:
        raise PrecisionError(
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
    _publish_spectrum(values.detach(), num_sources, plain=gap_eps <= 0)
    return projector(vectors, signal_mask(values, num_sources))


def _publish_spectrum(values: torch.Tensor, num_sources: torch.Tensor,
                      plain: bool) -> None:
    """Health statistics of ascending eigenvalues ``(B, D)`` (batch worst
    cases; device ops only)."""
    top = values[:, -1:].clamp(min=torch.finfo(values.dtype).tiny)
    dim = values.shape[-1]
    k = num_sources.long().clamp(1, dim - 1)[:, None]
    signal = values.gather(-1, dim - k)
    noise = values.gather(-1, dim - k - 1)
    COND.publish((top / values[:, :1].abs().clamp(
        min=torch.finfo(values.dtype).tiny)).max())
    if plain:
        SIGNAL_GAP.publish(((signal - noise) / top).min())
        MIN_GAP.publish(((values[:, 1:] - values[:, :-1]) / top).min())


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


@torch.no_grad()
def publish_data_checks(sample_cov: torch.Tensor, cov_true: torch.Tensor,
                        steering: torch.Tensor, valid: torch.Tensor) -> None:
    """Health statistics of a batch's data, on fully checked steps:
    traces of the input and label covariances over the dimension, and how
    many samples have a labelled direction without power (its beam power
    in the input over the mean element power below 1.5: a direction that
    holds a source reaches 1 + SNR x D)."""
    if not health.checking():
        return
    dim = sample_cov.shape[-1]
    INPUT_TRACE.publish(
        sample_cov.diagonal(dim1=-2, dim2=-1).real.sum(-1).mean() / dim)
    LABEL_TRACE.publish(
        cov_true.diagonal(dim1=-2, dim2=-1).real.float().sum(-1).mean() /
        dim)
    a = steering.to(sample_cov.dtype)
    a = a / a.norm(dim=-2, keepdim=True)
    power = (a.conj() * (sample_cov @ a)).sum(-2).real
    average = sample_cov.diagonal(dim1=-2, dim2=-1).real.mean(-1, True)
    ratio = torch.where(valid, power / average,
                        torch.full_like(power, float('inf')))
    powerless = ratio.amin(-1) < 1.5
    POWERLESS_LABELS.publish(
        powerless.sum().float(), count=powerless.numel())
