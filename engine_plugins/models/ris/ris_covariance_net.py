"""Covariance network for DoA: sample covariance in, a cleaned Hermitian
PSD covariance out, MUSIC on top."""
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
from mmengine.model import BaseModel

from engine_plugins.engine.fp32_region import fp32_region
from engine_plugins.engine.sanity import health
from engine_plugins.registry import MODELS
from engine_plugins.structures import ArrayGeometry
from .losses import (check_precision, frobenius_loss, music_loss,
                     predicted_projector, publish_data_checks,
                     steering_projector, subspace_loss)

LOSS_TERMS = ('frobenius', 'subspace', 'music')


@MODELS.register_module()
class RISCovarianceNet(BaseModel):
    """MLP from the sample covariance (real/imag channels) to a factor
    ``L`` (D x rank, complex); the estimate is ``L L^H + eps I`` scaled to
    trace D: Hermitian PSD by construction.

    The losses (weights in ``loss_weights``; a weight of 0 drops the term)
    run in an FP32 loss region: predictions and labels are cast to float32
    / complex64 (``loss_dtype='float64'``: complex128), autocast is off,
    and half precision or complex32 is refused. The eigen-based terms use
    diagonal loading, a distinct jitter and the gap-regularized
    :class:`StableEigh` backward (``stabilize=False``: plain ``eigh``).

    Args:
        geometry: :class:`ArrayGeometry` arguments (the MUSIC loss needs
            the manifold; the dimension D comes from it).
        hidden: Widths of the hidden layers.
        rank: Columns of ``L`` (default D).
        residual: Learn a correction to the sample covariance: ``L`` is
            ``U sqrt(Lambda)`` of the input plus the network output (whose
            last layer starts near zero), so training starts from the
            sample covariance, i.e. from classical MUSIC. Needs
            ``rank == D``.
        eps: The ``eps`` of ``L L^H + eps I``.
        loss_weights: Weights of ``frobenius``, ``subspace``, ``music``.
        fp32_loss_region: Run the losses in an FP32 region (turn off only to
            reproduce the bf16 eigendecomposition failure it prevents).
        loss_dtype: ``'float32'`` or ``'float64'``.
        stabilize: Diagonal loading + jitter + gap-regularized backward.
        loading, jitter, gap_eps: Their sizes (relative to trace D).

    Example:
        >>> model = dict(
        ...     type='RISCovarianceNet', geometry=dict(rows=8, cols=8),
        ...     hidden=(512, 512),
        ...     loss_weights=dict(frobenius=1.0, subspace=1.0, music=0.5))
    """

    required_inputs = ('inputs', 'data_samples')

    def __init__(self,
                 geometry: Optional[dict] = None,
                 hidden: Sequence[int] = (512, 512),
                 rank: Optional[int] = None,
                 residual: bool = False,
                 eps: float = 1e-3,
                 loss_weights: Optional[Dict[str, float]] = None,
                 fp32_loss_region: bool = True,
                 loss_dtype: str = 'float32',
                 stabilize: bool = True,
                 loading: float = 1e-3,
                 jitter: float = 1e-4,
                 gap_eps: float = 1e-4,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor, init_cfg)
        self.geometry = ArrayGeometry(**(geometry or {}))
        self.dim = self.geometry.dim
        self.rank = rank or self.dim
        if residual and self.rank != self.dim:
            raise ValueError(f'residual=True needs rank == D ({self.dim}), '
                             f'got rank={rank}')
        self.residual = residual
        weights = dict(frobenius=1.0, subspace=1.0, music=0.0)
        unknown = set(loss_weights or {}) - set(LOSS_TERMS)
        if unknown:
            raise KeyError(f'loss_weights: unknown terms {sorted(unknown)}; '
                           f'valid: {list(LOSS_TERMS)}')
        weights.update(loss_weights or {})
        self.loss_weights = weights
        # The terms every training step returns (zero weights drop terms).
        self.loss_keys = [f'loss_{k}' for k, w in weights.items() if w > 0]
        self.expected_loss_ranges = {
            f'loss_{k}': (0.0, w)
            for k, w in weights.items() if k != 'frobenius' and w > 0
        }
        self.eps = eps
        self.stab = dict(
            loading=loading if stabilize else 0.0,
            jitter=jitter if stabilize else 0.0,
            gap_eps=gap_eps if stabilize else 0.0)
        self.region = (
            fp32_region(dtype=loss_dtype, always=True)
            if fp32_loss_region else None)
        layers, width = [], 2 * self.dim**2
        for h in hidden:
            layers += [nn.Linear(width, h), nn.LayerNorm(h), nn.GELU()]
            width = h
        layers.append(nn.Linear(width, 2 * self.dim * self.rank))
        if residual:
            # Near zero, not zero: upstream layers get gradients at once.
            nn.init.normal_(layers[-1].weight, std=1e-4)
            nn.init.zeros_(layers[-1].bias)
        self.net = nn.Sequential(*layers)

    # -- prediction -----------------------------------------------------------
    def factor(self, inputs: torch.Tensor) -> torch.Tensor:
        """(B, 2, D, D) -> real/imag factor (B, 2, D, rank)."""
        out = self.net(inputs.flatten(1))
        out = out.view(-1, 2, self.dim, self.rank)
        if self.residual:
            out = out + self.input_factor(inputs)
        return out

    @torch.no_grad()
    def input_factor(self, inputs: torch.Tensor) -> torch.Tensor:
        """``U sqrt(Lambda)`` of the (PSD) input covariance, so that its
        ``L L^H`` is the input; (B, 2, D, D) real/imag."""
        with fp32_region(always=True):
            cov = torch.complex(inputs[:, 0].float(), inputs[:, 1].float())
            values, vectors = torch.linalg.eigh(cov)
            root = vectors * values.clamp(min=0).sqrt()[:, None, :]
        return torch.stack([root.real, root.imag], 1)

    def covariance(self, factor: torch.Tensor) -> torch.Tensor:
        """``L L^H + eps I`` scaled to trace D, complex."""
        lr, li = factor.unbind(1)
        # Real matmuls: the complex product in autocast-able pieces.
        re = lr @ lr.mT + li @ li.mT
        im = li @ lr.mT - lr @ li.mT
        # torch.complex takes no bf16; outside a region this widens the
        # prediction only; the labels keep their dtype.
        real = torch.promote_types(re.dtype, torch.float32)
        cov = torch.complex(re.to(real), im.to(real))
        cov = cov + self.eps * torch.eye(
            self.dim, dtype=cov.dtype, device=cov.device)
        trace = cov.diagonal(dim1=-2, dim2=-1).real.sum(-1)
        return cov * (self.dim / trace)[:, None, None]

    def true_steering(self, labels: dict) -> torch.Tensor:
        """Steering vectors at the labelled angles, (B, D, K_max), for
        labels without ``steering`` (``RISDoADataset`` provides it)."""
        angles = labels['angles'].detach().cpu().double().numpy()
        steer = np.stack(
            [self.geometry.steering(np.radians(a)) for a in angles])
        return torch.as_tensor(
            steer, dtype=torch.complex64, device=labels['angles'].device)

    def _check_labels(self, inputs: torch.Tensor, labels: dict) -> None:
        """Publish what the data contract promises and whether the labels
        fit the inputs (on checked training steps only; see
        ``publish_data_checks``)."""
        if not health.checking() or 'angles' not in labels:
            return
        with fp32_region(always=True):
            cov = torch.complex(inputs[:, 0].float(), inputs[:, 1].float())
            k = labels['num_sources']
            steering = labels.get('steering')
            if steering is None:
                steering = self.true_steering(labels)
            valid = torch.arange(
                labels['angles'].shape[1], device=k.device)[None] < k[:, None]
            publish_data_checks(cov, labels['cov_true'], steering, valid)

    # -- losses ---------------------------------------------------------------
    def loss_by_feat(self, factor: torch.Tensor,
                     labels: dict) -> Dict[str, torch.Tensor]:
        """The weighted loss terms, inside the FP32 region if enabled."""
        if 'steering' not in labels and (self.loss_weights['music'] > 0
                                         or self.loss_weights['subspace'] > 0):
            labels = dict(labels, steering=self.true_steering(labels))
        if self.region is None:
            return self._losses(factor, labels)
        return self.region.run(self._losses, factor, labels)

    def _losses(self, factor: torch.Tensor,
                labels: dict) -> Dict[str, torch.Tensor]:
        target = labels['cov_true']
        check_precision(cov_true=target)
        pred = self.covariance(factor)
        w = self.loss_weights
        losses = {}
        if w['frobenius'] > 0:
            losses['loss_frobenius'] = w['frobenius'] * frobenius_loss(
                pred, target.to(pred.dtype))
        if w['subspace'] > 0 or w['music'] > 0:
            k = labels['num_sources']
            proj = predicted_projector(pred, k, **self.stab)
            valid = torch.arange(
                labels['angles'].shape[1], device=k.device)[None] < k[:, None]
            steer = labels['steering'].to(proj.dtype)
            if w['subspace'] > 0:
                losses['loss_subspace'] = w['subspace'] * subspace_loss(
                    proj, steering_projector(steer, valid), k)
            if w['music'] > 0:
                losses['loss_music'] = w['music'] * music_loss(
                    proj, steer, valid)
        return losses

    # -- BaseModel ------------------------------------------------------------
    def forward(self,
                inputs: torch.Tensor,
                data_samples: Optional[dict] = None,
                mode: str = 'tensor'):
        factor = self.factor(inputs)
        if mode == 'loss':
            self._check_labels(inputs, data_samples)
            return self.loss_by_feat(factor, data_samples)
        if mode == 'tensor':
            return factor
        if mode == 'predict':
            return self.predict(factor, data_samples)
        raise ValueError(f"mode must be 'loss', 'predict' or 'tensor', got "
                         f'{mode!r}')

    def predict(self, factor: torch.Tensor, labels: dict) -> List[dict]:
        """Per-sample dicts of numpy arrays: ``pred_cov`` plus the labels
        (what :class:`RISDoAMetric` reads)."""
        with fp32_region(always=True):
            cov = self.covariance(factor.float())
        out = []
        for i in range(len(cov)):
            item = {
                k: v[i].detach().cpu().numpy()
                for k, v in (labels or {}).items()
                if isinstance(v, torch.Tensor)
            }
            item['pred_cov'] = cov[i].detach().cpu().numpy()
            out.append(item)
        return out
