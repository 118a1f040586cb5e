"""Held-out set 3, toy task: user code with one bug each.

Every part here is what a user would write next to the toy regression
config (a model variant, a scheduler, an optimizer, a hook); each carries
one realistic mistake, marked ``BUG`` in a comment.
"""
from typing import Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.optim.scheduler.lr_scheduler import LRSchedulerMixin
from mmengine.optim.scheduler.param_scheduler import _ParamScheduler
from torch.optim import Optimizer

from engine_plugins.registry import HOOKS, MODELS, OPTIMIZERS, PARAM_SCHEDULERS
from tests.toy_task import ToyRegressor


@MODELS.register_module()
class HeldCBinnedToyRegressor(ToyRegressor):
    """Targets are measured on a 0.5 grid, so the prediction is snapped to
    the same grid before the MSE.

    BUG: ``torch.round`` has a zero gradient everywhere: the loss moves
    with the data but no gradient reaches any weight.
    """

    def forward(self,
                inputs: torch.Tensor,
                targets: Optional[torch.Tensor] = None,
                mode: str = 'loss'):
        pred = self.net(inputs).squeeze(-1)
        if mode == 'loss':
            snapped = torch.round(pred * 2) / 2
            return dict(loss_mse=((snapped.float() - targets)**2).mean())
        return [dict(pred=p, target=t) for p, t in zip(pred, targets)]


class HeldCStandardizedLinear(nn.Linear):
    """Linear layer with weight standardization (zero mean, unit std per
    output row).

    BUG: standardizes ``self.weight.data``, which is outside autograd: the
    weight never gets a gradient (only the bias does).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.data
        w = (w - w.mean(1, keepdim=True)) / (w.std(1, keepdim=True) + 1e-5)
        return F.linear(x, w, self.bias)


@MODELS.register_module()
class HeldCWSToyRegressor(ToyRegressor):
    """The toy MLP with a weight-standardized first layer."""

    def __init__(self,
                 in_features: int = 4,
                 hidden: int = 16,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(in_features, hidden, init_cfg)
        self.net[0] = HeldCStandardizedLinear(in_features, hidden)


@MODELS.register_module()
class HeldCBatchStdToyRegressor(ToyRegressor):
    """Regresses targets standardized with the statistics of the batch (a
    scale-free loss).

    BUG: a batch of one sample (the last, short batch of an epoch) has an
    undefined unbiased std: NaN targets and a NaN loss.
    """

    def forward(self,
                inputs: torch.Tensor,
                targets: Optional[torch.Tensor] = None,
                mode: str = 'loss'):
        pred = self.net(inputs).squeeze(-1)
        if mode == 'loss':
            mean, std = targets.mean(), targets.std()
            scaled = (targets - mean) / std
            return dict(loss_mse=((pred.float() - scaled)**2).mean())
        return [dict(pred=p, target=t) for p, t in zip(pred, targets)]


@PARAM_SCHEDULERS.register_module()
class HeldCLinearWarmupLR(LRSchedulerMixin, _ParamScheduler):
    """Linear warm-up from 0 to the base lr over ``warmup_iters`` steps,
    then constant.

    BUG: ``//`` instead of ``/``: the factor is 0 for the whole warm-up.
    """

    def __init__(self, optimizer, warmup_iters: int = 500, **kwargs) -> None:
        self.warmup_iters = warmup_iters
        super().__init__(optimizer, **kwargs)

    def _get_value(self):
        factor = min(1, self.last_step // self.warmup_iters)
        return [base * factor for base in self.base_values]


@OPTIMIZERS.register_module()
class HeldCMomentumSGD(Optimizer):
    """Hand-written heavy-ball SGD (``buf = m * buf + grad``).

    BUG: the step adds the momentum buffer instead of subtracting it:
    every update climbs the loss.
    """

    def __init__(self, params, lr: float = 0.01, momentum: float = 0.9,
                 weight_decay: float = 0.0) -> None:
        super().__init__(
            params, dict(lr=lr, momentum=momentum,
                         weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group['params']:
                if p.grad is None:
                    continue
                grad = p.grad
                if group['weight_decay']:
                    grad = grad.add(p, alpha=group['weight_decay'])
                state = self.state[p]
                buf = state.get('momentum_buffer')
                if buf is None:
                    buf = state['momentum_buffer'] = grad.clone()
                else:
                    buf.mul_(group['momentum']).add_(grad)
                p.add_(buf, alpha=group['lr'])
        return loss


@HOOKS.register_module()
class HeldCFreezeAfterHook(Hook):
    """Fine-tune only the head after ``freeze_after`` iterations: freeze
    every parameter whose name contains one of ``modules``.

    BUG (in the config): ``modules='net.0'`` is a string, not a tuple;
    the hook iterates its characters, and ``'n' in name`` holds for every
    parameter, so everything is frozen.
    """

    priority = 'NORMAL'

    def __init__(self, freeze_after: int,
                 modules: Union[str, Sequence[str]] = ()) -> None:
        self.freeze_after = freeze_after
        self.modules = modules

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        if runner.iter != self.freeze_after:
            return
        model = runner.model
        if is_model_wrapper(model):
            model = model.module
        for name, param in model.named_parameters():
            if any(m in name for m in self.modules):
                param.requires_grad_(False)
