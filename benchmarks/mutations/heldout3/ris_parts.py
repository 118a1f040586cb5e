"""Held-out set 3, RIS DoA: a dataset, a preprocessor and model variants a
user might add, each with one bug (``BUG``)."""
from typing import Dict, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
from mmengine.model import BaseDataPreprocessor

from engine_plugins.datasets.ris import RISDoADataset
from engine_plugins.models.ris import RISCovarianceNet
from engine_plugins.registry import DATASETS, MODELS


@DATASETS.register_module()
class HeldCCalibratedRISDataset(RISDoADataset):
    """Scenes whose steering labels include measured per-element gains
    ``calibration`` (complex, ``(dim,)``; default: all ones, until the
    array is measured).

    BUG: the steering vectors are recomputed from ``angles``, which the
    dataset stores in degrees, but ``ArrayGeometry.steering`` takes
    radians: the labelled directions point anywhere but at the sources.
    """

    def __init__(self,
                 *args,
                 calibration: Optional[Sequence[complex]] = None,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        gains = np.ones(self.geometry.dim, np.complex128)
        if calibration is not None:
            gains = np.asarray(calibration, np.complex128)
        self.gains = gains

    def scene(self, rng: np.random.Generator, idx: int) -> Dict:
        item = super().scene(rng, idx)
        steering = self.geometry.steering(item['angles'].astype(np.float64))
        item['steering'] = (self.gains[:, None] * steering).astype(
            np.complex64)
        return item


@MODELS.register_module()
class HeldCStandardizePreprocessor(BaseDataPreprocessor):
    """Standardize every input feature (covariance entry) over the batch,
    as for any tabular network input.

    BUG: a sample covariance is not a bag of features: the per-entry
    z-score destroys its trace normalization and positive definiteness,
    and the residual start (``U sqrt(Lambda)`` of the input) is built
    from a matrix that is no covariance at all.
    """

    def __init__(self, eps: float = 1e-6, **kwargs) -> None:
        super().__init__(**kwargs)
        self.eps = eps

    def forward(self, data: dict, training: bool = False) -> dict:
        data = super().forward(data, training)
        x = data['inputs']
        mean, std = x.mean(0, keepdim=True), x.std(0, keepdim=True)
        data['inputs'] = (x - mean) / (std + self.eps)
        return data


class _GradReverse(torch.autograd.Function):
    """Identity forward, ``-alpha * grad`` backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, alpha: float) -> torch.Tensor:
        ctx.alpha = alpha
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return -ctx.alpha * grad, None


@MODELS.register_module()
class HeldCSNRInvariantRISNet(RISCovarianceNet):
    """Domain-adversarial training: an SNR regressor behind a gradient
    reversal layer makes the trunk's features SNR-invariant.

    BUG: the reversal is applied to the trunk output that both heads
    read, not only on the adversary's input: the covariance head's
    gradient is reversed too, and the trunk climbs the DoA losses.
    """

    def __init__(self, grl_alpha: float = 1.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.grl_alpha = grl_alpha
        width = self.net[-1].in_features
        self.snr_head = nn.Sequential(
            nn.Linear(width, 64), nn.GELU(), nn.Linear(64, 1))

    def _trunk(self, inputs: torch.Tensor) -> torch.Tensor:
        feats = self.net[:-1](inputs.flatten(1))
        return _GradReverse.apply(feats, self.grl_alpha)

    def factor(self, inputs: torch.Tensor) -> torch.Tensor:
        out = self.net[-1](self._trunk(inputs))
        out = out.view(-1, 2, self.dim, self.rank)
        if self.residual:
            out = out + self.input_factor(inputs)
        return out

    def forward(self,
                inputs: torch.Tensor,
                data_samples: Optional[dict] = None,
                mode: str = 'tensor'):
        out = super().forward(inputs, data_samples, mode)
        if mode == 'loss':
            snr = self.snr_head(self._trunk(inputs)).squeeze(-1)
            target = data_samples['snr_db'].float() / 10.0
            out['loss_snr_adv'] = ((snr - target)**2).mean()
        return out


@MODELS.register_module()
class HeldCSNRBalancedRISNet(RISCovarianceNet):
    """The Frobenius term balanced over SNR: the mean over ``num_bins``
    equal-width SNR bins of each bin's mean error, so low-SNR scenes do not
    dominate.

    BUG: a bin that holds no scene of the batch divides 0 by 0: the first
    batch with an empty bin gives a NaN loss.
    """

    def __init__(self,
                 num_bins: int = 10,
                 snr_range: Sequence[float] = (-15.0, 20.0),
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.register_buffer(
            'snr_edges',
            torch.linspace(snr_range[0], snr_range[1], num_bins + 1)[1:-1],
            persistent=False)
        self.num_bins = num_bins

    def _losses(self, factor: torch.Tensor,
                labels: dict) -> Dict[str, torch.Tensor]:
        losses = super()._losses(factor, labels)
        if 'loss_frobenius' not in losses:
            return losses
        pred = self.covariance(factor)
        target = labels['cov_true'].to(pred.dtype)
        err = (pred - target).abs().square().sum((-2, -1)) / \
            target.abs().square().sum((-2, -1))
        bins = torch.bucketize(labels['snr_db'].float(), self.snr_edges)
        onehot = nn.functional.one_hot(bins, self.num_bins).to(err.dtype)
        per_bin = (onehot * err[:, None]).sum(0) / onehot.sum(0)
        losses['loss_frobenius'] = \
            self.loss_weights['frobenius'] * per_bin.mean()
        return losses


@MODELS.register_module()
class HeldCLearnedLoadingRISNet(RISCovarianceNet):
    """Residual network whose start, ``U sqrt(Lambda)`` of the input, is
    taken after a learned diagonal loading ``exp(log_loading) I`` of the
    input (more robust at low SNR).

    BUG: the loading is applied inside ``input_factor``, which stays under
    ``torch.no_grad()`` as in the parent: ``log_loading`` is a parameter
    that never gets a gradient.
    """

    def __init__(self, init_loading: float = 0.05, **kwargs) -> None:
        super().__init__(**kwargs)
        self.log_loading = nn.Parameter(
            torch.tensor(float(np.log(init_loading))))

    @torch.no_grad()
    def input_factor(self, inputs: torch.Tensor) -> torch.Tensor:
        cov = torch.complex(inputs[:, 0].float(), inputs[:, 1].float())
        eye = torch.eye(self.dim, dtype=cov.dtype, device=cov.device)
        cov = cov + self.log_loading.exp() * eye
        cov = cov * (self.dim / cov.diagonal(dim1=-2, dim2=-1).real.sum(-1))[
            :, None, None]
        values, vectors = torch.linalg.eigh(cov)
        root = vectors * values.clamp(min=0).sqrt()[:, None, :]
        return torch.stack([root.real, root.imag], 1)
