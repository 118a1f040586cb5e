"""Parts of held-out set B on the RIS DoA task: dataset and model
subclasses, each with one bug."""
from typing import Dict

import numpy as np
import torch
import torch.nn as nn
from mmengine.logging import print_log

from engine_plugins.datasets.ris import RISDoADataset
from engine_plugins.models.ris import RISCovarianceNet
from engine_plugins.models.ris.losses import (check_precision, frobenius_loss,
                                              music_loss, predicted_projector,
                                              steering_projector,
                                              subspace_loss)
from engine_plugins.registry import DATASETS, MODELS


@MODELS.register_module()
class HeldBDetachedEighCovNet(RISCovarianceNet):
    """Same losses, with the eigendecomposition fed a detached estimate.

    BUG: ``eigh`` backward "is unstable", so the projector is taken from
    ``pred.detach()``. The subspace and MUSIC terms then carry no gradient
    at all: only the Frobenius term trains the network.
    """

    def _losses(self, factor, labels) -> Dict[str, torch.Tensor]:
        losses = {}
        target = labels['cov_true']
        check_precision(cov_true=target)
        pred = self.covariance(factor)
        w = self.loss_weights
        if w['frobenius'] > 0:
            losses['loss_frobenius'] = w['frobenius'] * frobenius_loss(
                pred, target.to(pred.dtype))
        k = labels['num_sources']
        proj = predicted_projector(pred.detach(), k, **self.stab)
        valid = torch.arange(
            labels['angles'].shape[1], device=k.device)[None] < k[:, None]
        steer = labels['steering'].to(proj.dtype)
        if w['subspace'] > 0:
            losses['loss_subspace'] = w['subspace'] * subspace_loss(
                proj, steering_projector(steer, valid), k)
        if w['music'] > 0:
            losses['loss_music'] = w['music'] * music_loss(proj, steer, valid)
        return losses


@MODELS.register_module()
class HeldBReinitHeadCovNet(RISCovarianceNet):
    """Re-initialises the output layer near zero in ``init_weights``.

    BUG: the layer is replaced by a new ``nn.Linear`` instead of being
    re-initialised in place. The runner calls ``init_weights`` after it
    built the optimizer, so the new layer's weight and bias are in no
    optimizer group and never change.
    """

    def init_weights(self) -> None:
        super().init_weights()
        old = self.net[-1]
        new = nn.Linear(old.in_features, old.out_features)
        nn.init.normal_(new.weight, std=1e-4)
        nn.init.zeros_(new.bias)
        self.net[-1] = new


@DATASETS.register_module()
class HeldBNoiseOnlyRISDataset(RISDoADataset):
    """Mixes in noise-only scenes (K = 0, identity ideal covariance) so the
    network also sees empty scenes, with probability ``noise_only``.

    BUG (found only when one is drawn): the subspace loss divides by 2K,
    so a batch with one noise-only scene makes it 0 / 0 = NaN.
    """

    def __init__(self, *args, noise_only: float = 0.005, **kwargs) -> None:
        self.noise_only = noise_only
        super().__init__(*args, **kwargs)

    def scene(self, rng: np.random.Generator, idx: int) -> Dict:
        item = super().scene(rng, idx)
        if self.split != 'train' or rng.random() >= self.noise_only:
            return item
        dim, t = self.geometry.dim, self.num_snapshots
        noise = (rng.standard_normal((dim, t)) +
                 1j * rng.standard_normal((dim, t))) / np.sqrt(2)
        cov = noise @ noise.conj().T / t
        item.update(
            cov=(cov * dim / np.trace(cov).real).astype(np.complex64),
            cov_true=np.eye(dim, dtype=np.complex64),
            angles=np.zeros_like(item['angles']),
            source_cov=np.zeros_like(item['source_cov']),
            noise_power=np.float32(1.0),
            num_sources=np.int64(0))
        item['steering'] = self.geometry.steering(
            np.radians(item['angles'])).astype(np.complex64)
        # (benchmark bookkeeping only: when the first one is drawn)
        print_log(f'HeldBNoiseOnlyRISDataset: noise-only scene at index '
                  f'{idx}', logger='current')
        return item


@DATASETS.register_module()
class HeldBPhysicalCovRISDataset(RISDoADataset):
    """Returns the ideal covariance by the textbook formula,
    ``A P A^H + sigma^2 I`` with unit source powers and
    ``sigma^2 = 10^(-SNR/10)``.

    BUG: the inputs (and the network's estimate) are scaled to trace D,
    this label is not: its trace is ``D (K + sigma^2)``, 2x to 33x too
    large depending on K and the SNR.
    """

    def scene(self, rng: np.random.Generator, idx: int) -> Dict:
        item = super().scene(rng, idx)
        k = int(item['num_sources'])
        a = item['steering'][:, :k].astype(np.complex128)
        sigma2 = 10**(-float(item['snr_db']) / 10)
        cov_true = a @ a.conj().T + sigma2 * np.eye(a.shape[0])
        item['cov_true'] = cov_true.astype(np.complex64)
        return item


@DATASETS.register_module()
class HeldBReceivedPowerRISDataset(RISDoADataset):
    """Gives the network the covariance at the receiver's power level
    (``received_power`` watts per element, e.g. -60 dBm), as measured
    hardware would.

    BUG: the network input is no longer the trace-normalized covariance
    the model expects: it is 1e-9 times smaller, so the MLP sees only its
    biases and the residual path starts from ``eps I``.
    """

    def __init__(self, *args, received_power: float = 1e-9,
                 **kwargs) -> None:
        self.received_power = received_power
        super().__init__(*args, **kwargs)

    def __getitem__(self, idx: int) -> dict:
        item = super().__getitem__(idx)
        item['inputs'] = item['inputs'] * self.received_power
        return item
