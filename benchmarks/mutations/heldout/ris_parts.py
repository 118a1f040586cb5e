"""Held-out broken setups for the RIS DoA task."""
import numpy as np
import torch
import torch.nn as nn

from engine_plugins.datasets.ris import RISDoADataset
from engine_plugins.models.ris.ris_covariance_net import RISCovarianceNet
from engine_plugins.registry import DATASETS, MODELS


@DATASETS.register_module()
class HeldMeasuredDoADataset(RISDoADataset):
    """Formats samples like the team's measured-data loader: angles in
    radians (the measurement files' unit) and no ideal ``steering`` field
    (measured data has none; the model recomputes it from the angles).

    Bug: ``RISCovarianceNet.true_steering`` expects degrees and converts
    them to radians again, so the subspace and MUSIC losses are built for
    directions 57x closer to broadside than the true ones."""

    def __getitem__(self, idx):
        item = super().__getitem__(idx)
        samples = item['data_samples']
        samples['angles'] = torch.deg2rad(samples['angles'])
        samples.pop('steering')
        return item


@DATASETS.register_module()
class HeldNoiseOnlyScenesDataset(RISDoADataset):
    """Mixes in noise-only scenes (K = 0), so that the network also sees
    the noise floor on its own: every ``every``-th scene
    (``idx % every == every - 1``).

    Bug: the losses normalize by the number of sources; a batch holding a
    K = 0 scene gives 0 / 0 in the subspace loss. With the base's
    sequential InfiniteSampler (batch 32) the first such scene, index 99,
    is in the 4th batch."""

    def __init__(self, *args, every: int = 100, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.every = every

    def __getitem__(self, idx):
        item = super().__getitem__(idx)
        if idx % self.every != self.every - 1:
            return item
        s = item['data_samples']
        dim, t = self.geometry.dim, self.num_snapshots
        rng = np.random.default_rng(idx)
        noise = (rng.standard_normal((dim, t)) +
                 1j * rng.standard_normal((dim, t))) / np.sqrt(2)
        cov = noise @ noise.conj().T / t
        cov = torch.as_tensor(
            (cov * dim / np.trace(cov).real).astype(np.complex64))
        s['cov'] = cov
        s['cov_true'] = torch.eye(dim, dtype=torch.complex64)
        s['angles'] = torch.zeros_like(s['angles'])
        s['steering'] = torch.as_tensor(
            self.geometry.steering(np.radians(
                s['angles'].numpy().astype(np.float64))).astype(
                    np.complex64))
        s['source_cov'] = torch.zeros_like(s['source_cov'])
        s['noise_power'] = torch.tensor(1.0)
        s['num_sources'] = torch.tensor(0)
        item['inputs'] = torch.stack([cov.real, cov.imag]).float()
        return item


@DATASETS.register_module()
class HeldCountWithNoiseDataset(RISDoADataset):
    """Reports ``num_sources`` as the subspace dimension "including the
    strongest noise direction" (K + 1), as an old MUSIC script did.

    Bug: the losses read ``num_sources`` as the source count: K = 1
    scenes get the zero-padded angle (broadside) as a phantom second
    source, and K = 2 scenes claim 3 sources for 2 angle rows."""

    def __getitem__(self, idx):
        item = super().__getitem__(idx)
        item['data_samples']['num_sources'] = \
            item['data_samples']['num_sources'] + 1
        return item


@MODELS.register_module()
class HeldZeroStartCovNet(RISCovarianceNet):
    """Makes the residual correction start at exactly zero by replacing
    the output layer with a zero-initialized one in ``init_weights``.

    Bug: the runner builds the optimizer before it calls
    ``init_weights``, so the new layer is not in the optimizer: it keeps
    its zeros forever, and with a zero output layer no gradient reaches
    the layers before it either. The network stays the identity on the
    sample covariance."""

    def init_weights(self):
        super().init_weights()
        last = self.net[-1]
        fresh = nn.Linear(last.in_features, last.out_features).to(
            last.weight.device)
        nn.init.zeros_(fresh.weight)
        nn.init.zeros_(fresh.bias)
        self.net[-1] = fresh


@MODELS.register_module()
class HeldCheapEigenCovNet(RISCovarianceNet):
    """Saves the cost of the eigen backward: the Frobenius term trains
    the network, and the subspace and MUSIC terms are computed on a
    detached copy of the factor, "as monitors that still count in the
    loss".

    Bug: both eigen terms are constants with respect to the parameters
    (dead terms); only the Frobenius term trains."""

    def _losses(self, factor, labels):
        losses = super()._losses(factor, labels)
        eigen = super()._losses(factor.detach(), labels)
        for key in ('loss_subspace', 'loss_music'):
            if key in eigen:
                losses[key] = eigen[key]
        return losses
