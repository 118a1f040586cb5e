"""Hook that puts named methods or submodules of the model in FP32 loss
regions."""
from typing import List, Sequence, Union

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from engine_plugins.registry import HOOKS
from ..fp32_region import fp32_region


@HOOKS.register_module()
class FP32LossRegionHook(Hook):
    """Run the given parts of the model in an :class:`fp32_region`.

    Fires once, in ``before_run``, before any forward pass: from then on each
    target runs with autocast off and its tensor inputs (predictions and
    labels) widened to float32, whatever the AMP state of the caller.

    Args:
        targets: Dotted paths from the model. A path to a method
            (``'bbox_head.loss_by_feat'``) wraps that method; a path to a
            submodule (``'criterion'``) wraps its ``forward``.
        dtype: ``'float32'`` or ``'float64'``.

    Example:
        >>> custom_hooks = [
        ...     dict(type='FP32LossRegionHook',
        ...          targets=['bbox_head.loss_by_feat', 'criterion'])]
    """

    priority = 'VERY_HIGH'

    def __init__(self,
                 targets: Sequence[str],
                 dtype: Union[str, torch.dtype] = 'float32') -> None:
        if isinstance(targets, str):
            targets = [targets]
        if not targets:
            raise ValueError('FP32LossRegionHook needs at least one target')
        self.targets: List[str] = list(targets)
        self.dtype = dtype

    def before_run(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        for target in self.targets:
            wrap_in_fp32_region(model, target, self.dtype)


def wrap_in_fp32_region(model: torch.nn.Module,
                        target: str,
                        dtype: Union[str, torch.dtype] = 'float32') -> None:
    """Wrap ``model.<target>`` (a method or a submodule) in place.

    Raises:
        AttributeError: a path component does not exist; the message names
            it and lists what does.
    """
    owner, parts = model, target.split('.')
    for i, part in enumerate(parts):
        if not hasattr(owner, part):
            where = '.'.join(parts[:i]) or type(model).__name__
            children = sorted(
                name
                for name, _ in getattr(owner, 'named_children', lambda: [])())
            raise AttributeError(
                f"FP32LossRegionHook target '{target}': {where} has no "
                f"attribute '{part}'" +
                (f'; submodules: {children}' if children else ''))
        if i < len(parts) - 1:
            owner = getattr(owner, part)
    name = parts[-1]
    attr = getattr(owner, name)
    if isinstance(attr, torch.nn.Module):
        owner, name, attr = attr, 'forward', attr.forward
    if getattr(attr, '_fp32_region', False):
        return
    if not callable(attr):
        raise TypeError(f"FP32LossRegionHook target '{target}' is not "
                        'callable or a module')
    region = fp32_region(dtype=dtype)

    def wrapped(*args, **kwargs):
        return region.run(attr, *args, **kwargs)

    wrapped._fp32_region = True
    wrapped.__wrapped__ = attr
    setattr(owner, name, wrapped)
