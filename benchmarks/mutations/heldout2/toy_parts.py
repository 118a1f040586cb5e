"""Parts of held-out set B on the toy regression task: two hand-written
warm-up schedulers, two model variants and a Lookahead hook, each written
the way a user would and each with one bug."""
import copy
from typing import List, Optional

import torch
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.optim.scheduler.lr_scheduler import LRSchedulerMixin
from mmengine.optim.scheduler.param_scheduler import INF, _ParamScheduler

from engine_plugins.registry import HOOKS, MODELS, PARAM_SCHEDULERS
from tests.toy_task import ToyRegressor


class _HeldBWarmup(_ParamScheduler):
    """Linear warm-up of a parameter over ``warmup_iters`` steps, then
    constant."""

    def __init__(self,
                 optimizer,
                 param_name: str,
                 warmup_iters: int = 100,
                 begin: int = 0,
                 end: int = INF,
                 last_step: int = -1,
                 by_epoch: bool = False,
                 verbose: bool = False) -> None:
        self.warmup_iters = warmup_iters
        super().__init__(optimizer, param_name, begin, end, last_step,
                         by_epoch, verbose)

    def factor(self) -> float:
        raise NotImplementedError

    def _get_value(self) -> List[float]:
        return [base * self.factor() for base in self.base_values]


@PARAM_SCHEDULERS.register_module()
class HeldBIntWarmupLR(LRSchedulerMixin, _HeldBWarmup):
    """Warm-up ``lr = base * min(1, step / warmup_iters)``.

    BUG: floor division. ``step // warmup_iters`` is 0 for every step of
    the warm-up, so the lr is exactly 0 for ``warmup_iters`` iterations.
    """

    def factor(self) -> float:
        return min(1, self.last_step // self.warmup_iters)


@PARAM_SCHEDULERS.register_module()
class HeldBInverseWarmupLR(LRSchedulerMixin, _HeldBWarmup):
    """Warm-up ``lr = base * min(1, (step + 1) / warmup_iters)``.

    BUG: the base lr is divided by the warm-up factor instead of being
    multiplied by it, so the first step runs at ``warmup_iters`` times the
    base lr and the "warm-up" is a cool-down from there.
    """

    def factor(self) -> float:
        return min(1.0, (self.last_step + 1) / self.warmup_iters)

    def _get_value(self) -> List[float]:
        return [base / self.factor() for base in self.base_values]


@MODELS.register_module()
class HeldBWideDeepRegressor(ToyRegressor):
    """Wide & deep: the MLP plus a linear ("wide") path on the raw inputs.

    BUG: the wide path was pasted from the inference helper together with
    its ``torch.no_grad()`` block, so its weights never get a gradient and
    keep their random initialisation.
    """

    def __init__(self,
                 in_features: int = 4,
                 hidden: int = 16,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(in_features, hidden, init_cfg)
        self.wide = nn.Linear(in_features, 1)

    def forward(self, inputs, targets=None, mode: str = 'loss'):
        with torch.no_grad():
            wide = self.wide(inputs).squeeze(-1)
        pred = self.net(inputs).squeeze(-1) + wide
        if mode == 'loss':
            return dict(loss_mse=((pred.float() - targets)**2).mean())
        return [dict(pred=p, target=t) for p, t in zip(pred, targets)]


@MODELS.register_module()
class HeldBBoundedRegressor(ToyRegressor):
    """Regressor with a sigmoid output, for targets min-max scaled to
    [0, 1].

    BUG: nothing scales the targets: the dataset gives raw ``x @ w + 0.5``
    (about -15 to 15), which a sigmoid can never reach.
    """

    def forward(self, inputs, targets=None, mode: str = 'loss'):
        pred = torch.sigmoid(self.net(inputs).squeeze(-1))
        if mode == 'loss':
            return dict(loss_mse=((pred.float() - targets)**2).mean())
        return [dict(pred=p, target=t) for p, t in zip(pred, targets)]


@MODELS.register_module()
class HeldBStandardizedRegressor(ToyRegressor):
    """Standardizes the input features before the MLP (zero mean, unit
    variance per feature).

    BUG: the statistics are taken over the wrong axis, ``dim=-1`` (the 4
    features of each sample) instead of ``dim=0`` (the batch): every
    sample loses its own mean and scale, which the target ``x @ w + 0.5``
    depends on, so the loss cannot fall below a high floor.
    """

    def forward(self, inputs, targets=None, mode: str = 'loss'):
        inputs = (inputs - inputs.mean(-1, keepdim=True)) / inputs.std(
            -1, keepdim=True)
        return super().forward(inputs, targets, mode)


@HOOKS.register_module()
class HeldBLookaheadHook(Hook):
    """Lookahead (Zhang et al. 2019): every ``k`` steps the slow weights
    move ``alpha`` of the way to the fast ones and the fast weights restart
    from them.

    BUG (config): ``alpha=0.0``, taken to mean "no extra smoothing". With
    alpha 0 the slow weights never move, and the fast weights are reset to
    the initial weights after every k-th step.
    """

    priority = 'VERY_LOW'

    def __init__(self, k: int = 1, alpha: float = 0.5) -> None:
        self.k = k
        self.alpha = alpha
        self.slow = None

    @staticmethod
    def _params(runner):
        model = runner.model.module if hasattr(runner.model,
                                               'module') else runner.model
        return [p for p in model.parameters() if p.requires_grad]

    def before_train(self, runner) -> None:
        self.slow = [copy.deepcopy(p.detach()) for p in self._params(runner)]

    @torch.no_grad()
    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        if (runner.iter + 1) % self.k:
            return
        for slow, fast in zip(self.slow, self._params(runner)):
            slow.add_(fast - slow, alpha=self.alpha)
            fast.copy_(slow)
