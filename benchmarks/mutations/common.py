"""Bugs that fit any task, written as users write them: a hook, an optim
wrapper constructor or a collate function, loaded with ``custom_imports``.

Each part does one wrong thing on purpose; the catalog
(:mod:`benchmarks.mutations.catalog`) says which failure category it
belongs to and when it can first be seen.
"""
import copy

import torch.nn as nn
from mmengine.dataset import default_collate
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.optim import DefaultOptimWrapperConstructor
from mmengine.registry import FUNCTIONS

from engine_plugins.registry import HOOKS, OPTIM_WRAPPER_CONSTRUCTORS


def _module(runner) -> nn.Module:
    model = runner.model
    return model.module if is_model_wrapper(model) else model


def _find(model: nn.Module, path: str, kinds=(nn.Linear, nn.Conv2d)):
    """The first Linear/Conv2d at or under ``model.<path>``, with its
    parent and attribute name."""
    root = model.get_submodule(path) if path else model
    for name, module in root.named_modules():
        for child_name, child in module.named_children():
            if isinstance(child, kinds):
                return module, child_name, child
    raise LookupError(f'no Linear/Conv2d under {path!r}')


@HOOKS.register_module()
class MutFreezeAll(Hook):
    """"Freeze the backbone for the first epochs" written as a freeze of
    the whole model."""

    def before_train(self, runner) -> None:
        _module(runner).requires_grad_(False)


class _Adapted(nn.Module):
    """``base(x) + up(down(x))`` with ``up`` zero-initialised (LoRA)."""

    def __init__(self, base: nn.Module, rank: int = 4) -> None:
        super().__init__()
        self.base = base
        if isinstance(base, nn.Linear):
            self.down = nn.Linear(base.in_features, rank, bias=False)
            self.up = nn.Linear(rank, base.out_features, bias=False)
        else:
            self.down = nn.Conv2d(base.in_channels, rank, 1, bias=False)
            self.up = nn.Conv2d(rank, base.out_channels, 1, bias=False)
        nn.init.zeros_(self.up.weight)

    def forward(self, x):
        out = self.base(x)
        if isinstance(self.base, nn.Conv2d):
            delta = self.up(self.down(x))
            if delta.shape[-2:] != out.shape[-2:]:
                delta = nn.functional.interpolate(delta, out.shape[-2:])
            return out + delta
        return out + self.up(self.down(x))


@HOOKS.register_module()
class MutInjectAdapter(Hook):
    """Adds a LoRA-style adapter to a layer in ``before_train``: after the
    runner built the optimizer."""

    def __init__(self, path: str = '') -> None:
        self.path = path

    def before_train(self, runner) -> None:
        parent, name, layer = _find(_module(runner), self.path)
        adapted = _Adapted(layer).to(next(layer.parameters()).device)
        setattr(parent, name, adapted)


@HOOKS.register_module()
class MutReplaceWeight(Hook):
    """Re-creates a layer's weight as a new Parameter (a "re-init" or a
    weight load done by assignment) after the optimizer was built."""

    def __init__(self, path: str = '') -> None:
        self.path = path

    def before_train(self, runner) -> None:
        _, _, layer = _find(_module(runner), self.path)
        layer.weight = nn.Parameter(layer.weight.detach().clone())


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class MutCopyOptimConstructor(DefaultOptimWrapperConstructor):
    """Builds the optimizer over a deep copy of the model (e.g. to "keep
    the original weights safe")."""

    def __call__(self, model: nn.Module):
        return super().__call__(copy.deepcopy(model))


@HOOKS.register_module()
class MutNaNInputsAt(Hook):
    """A corrupted image (NaN pixels after a float transform) in the batch
    of iteration ``at``."""

    def __init__(self, at: int) -> None:
        self.at = at

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        if runner.iter + 1 != self.at:
            return
        inputs = data_batch['inputs']
        if isinstance(inputs, list):
            inputs[0] = inputs[0].float()
            inputs[0][..., 0, 0] = float('nan')
        else:
            inputs.view(-1)[0] = float('nan')


@HOOKS.register_module()
class MutInfActivationAt(Hook):
    """An activation that overflows to inf at iteration ``at`` (e.g. an
    exp() on a large logit), on the output of the layer at ``path``."""

    def __init__(self, at: int, path: str = '') -> None:
        self.at = at
        self.path = path
        self._handle = None

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        if runner.iter + 1 != self.at:
            return
        _, _, layer = _find(_module(runner), self.path)

        def overflow(module, args, output):
            return output * float('inf')

        self._handle = layer.register_forward_hook(overflow)

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None


@HOOKS.register_module()
class MutNaNGradAt(Hook):
    """A backward that returns NaN at iteration ``at`` (a finite forward:
    e.g. sqrt or eigh at a degenerate point), on the output of the layer at
    ``path``."""

    def __init__(self, at: int, path: str = '') -> None:
        self.at = at
        self.path = path
        self._handle = None

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        if runner.iter + 1 != self.at:
            return
        _, _, layer = _find(_module(runner), self.path)

        def nan_grad(module, args, output):
            output.register_hook(lambda grad: grad * float('nan'))

        self._handle = layer.register_forward_hook(nan_grad)

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None


@HOOKS.register_module()
class MutLabelsAt(Hook):
    """A late batch from a differently labelled source: at iteration
    ``at`` every gt label of the batch becomes ``label + 1`` (``'plus1'``,
    1-based ids), ``-1`` (``'minus1'``, an "ignore" label) or
    ``num_classes`` (``'num_classes'``, background as a class)."""

    def __init__(self, at: int, mode: str, num_classes: int = 3) -> None:
        self.at = at
        self.mode = mode
        self.num_classes = num_classes

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        if runner.iter + 1 != self.at:
            return
        for sample in data_batch['data_samples']:
            labels = sample.gt_instances.labels
            if self.mode == 'plus1':
                labels += 1
            elif len(labels):
                labels[0] = -1 if self.mode == 'minus1' else self.num_classes


@FUNCTIONS.register_module()
def mut_keep_forward_args_collate(batch):
    """A trainer-style filter: keep only what ``forward`` names explicitly
    (``inputs`` and ``data_samples``), dropping everything else."""
    data = default_collate(batch)
    return {k: v for k, v in data.items() if k in ('inputs', )}
