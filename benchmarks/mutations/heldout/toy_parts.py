"""Held-out broken setups for the toy regression task.

Each part is something a user could plausibly write on top of
``tests/toy_task.py``; the bug is described in the docstring.
"""
import torch
from mmengine.hooks import Hook

from engine_plugins.registry import DATASETS, HOOKS, MODELS
from tests.toy_task import ToyRegressionDataset, ToyRegressor


@MODELS.register_module()
class HeldToyRegressorL2(ToyRegressor):
    """Adds an explicit L2 penalty as its own loss term.

    Bug: the data term is computed on ``pred.data`` (copied from a logging
    snippet), so it is cut from the graph; only the penalty trains and the
    weights just shrink towards zero.
    """

    def __init__(self, reg_weight: float = 1e-3, **kwargs) -> None:
        super().__init__(**kwargs)
        self.reg_weight = reg_weight

    def forward(self, inputs, targets=None, mode='loss'):
        if mode != 'loss':
            return super().forward(inputs, targets, mode)
        pred = self.net(inputs).squeeze(-1)
        loss_mse = ((pred.data.float() - targets)**2).mean()
        loss_l2 = self.reg_weight * sum(
            p.pow(2).sum() for p in self.parameters())
        return dict(loss_mse=loss_mse, loss_l2=loss_l2)


@MODELS.register_module()
class HeldToyProbeRegressor(ToyRegressor):
    """Split into a feature extractor and a head, as in a linear-probe
    script.

    Bug: the feature extractor runs under ``torch.no_grad()`` (left over
    from the probe script) although it is meant to be trained: its
    parameters require grad and sit in the optimizer but never get a
    gradient.
    """

    def features(self, inputs):
        with torch.no_grad():
            return self.net[1](self.net[0](inputs))

    def forward(self, inputs, targets=None, mode='loss'):
        pred = self.net[2](self.features(inputs)).squeeze(-1)
        if mode == 'loss':
            return dict(loss_mse=((pred.float() - targets)**2).mean())
        return [dict(pred=p, target=t) for p, t in zip(pred, targets)]


@MODELS.register_module()
class HeldToyHuberRegressor(ToyRegressor):
    """A robust (Huber) data term plus a small L2 penalty.

    Bug: the Huber term is returned as ``'huber'`` (a "nicer" log name).
    mmengine only sums keys containing ``'loss'``, so it is logged but
    never optimized; only ``loss_l2`` trains.
    """

    def forward(self, inputs, targets=None, mode='loss'):
        if mode != 'loss':
            return super().forward(inputs, targets, mode)
        pred = self.net(inputs).squeeze(-1)
        huber = torch.nn.functional.smooth_l1_loss(pred.float(), targets)
        loss_l2 = 1e-3 * sum(p.pow(2).sum() for p in self.parameters())
        return dict(huber=huber, loss_l2=loss_l2)


@HOOKS.register_module()
class HeldLinearDecayHook(Hook):
    """Linear lr decay to 0 over the run, written as a hook.

    Bug: the remaining fraction is computed with floor division, so it is
    1 at the first iteration and 0 from the second on.
    """

    priority = 'NORMAL'

    def before_train(self, runner) -> None:
        self.base_lrs = [
            g['lr'] for g in runner.optim_wrapper.optimizer.param_groups
        ]

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        remaining = (runner.max_iters - runner.iter) // runner.max_iters
        for group, lr in zip(runner.optim_wrapper.optimizer.param_groups,
                             self.base_lrs):
            group['lr'] = lr * remaining


@DATASETS.register_module()
class HeldToyCSVDataset(ToyRegressionDataset):
    """The toy data as if exported to CSV and read back.

    Bug: row 38 of the export has an empty target cell, which the reader
    turns into NaN (sample index 37). With the base's seeded sampler
    (seed 0), index 37 is in the 7th batch of the first epoch.
    """

    def __init__(self, *args, missing=(37, ), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for i in missing:
            self.y[i] = float('nan')


@DATASETS.register_module()
class HeldToyRawUnitsDataset(ToyRegressionDataset):
    """The toy data in raw sensor units.

    Bug: the features are returned as ``x * 100 + 500`` (sensor counts)
    while the targets were fitted on standardized features, and no
    normalization is applied before the MLP.
    """

    def __getitem__(self, idx):
        item = super().__getitem__(idx)
        item['inputs'] = item['inputs'] * 100.0 + 500.0
        return item
