"""Optimizer coverage: the optimizer holds exactly the model's parameters.

A parameter that trains but is not in the optimizer gets gradients that
nobody applies (adapters injected after the optimizer was built, a layer
replaced by a hook). A parameter in the optimizer that is not the model's
is updated where nobody reads it (an optimizer built over a copy).
"""
from typing import Iterable, List, Optional

import torch
import torch.nn as nn

from .errors import OptimizerCoverageError, PrecisionError
from .grad_report import summarize


def optimizer_params(optimizer: torch.optim.Optimizer) -> List[nn.Parameter]:
    """The optimizer's parameters, each once, in group order."""
    seen, out = set(), []
    for group in optimizer.param_groups:
        for p in group['params']:
            if id(p) not in seen:
                seen.add(id(p))
                out.append(p)
    return out


def _twin(param: torch.Tensor, named: Iterable) -> Optional[str]:
    """Name of a model parameter equal to ``param`` (a copy of it)."""
    for name, p in named:
        if (p.shape == param.shape and p.dtype == param.dtype
                and p.device == param.device
                and torch.equal(p.detach(), param.detach())):
            return name
    return None


def check_optimizer_coverage(model: nn.Module,
                             optimizer: torch.optim.Optimizer) -> None:
    """Raise :class:`OptimizerCoverageError` naming the parameters that
    train outside the optimizer, and those the optimizer holds outside
    the model.

    Frozen parameters (``requires_grad=False``) may or may not be in the
    optimizer: mmengine adds them, other constructors do not.
    """
    named = list(model.named_parameters())
    in_model = {id(p) for _, p in named}
    held = optimizer_params(optimizer)
    in_opt = {id(p) for p in held}
    missing = [(n, p) for n, p in named
               if p.requires_grad and id(p) not in in_opt]
    foreign = [p for p in held if id(p) not in in_model]
    if not missing and not foreign:
        return
    parts = []
    trainable = [p for _, p in named if p.requires_grad]
    if foreign and len(missing) == len(trainable):
        twins = [_twin(p, named) for p in foreign[:3]]
        copy = [t for t in twins if t]
        parts.append(
            f'the optimizer holds {len(foreign)} parameters and none is the '
            "model's" +
            (f' (they equal {summarize(copy)}: copies)' if copy else '') +
            ': it was built over a copy of the model (deepcopy, or a model '
            'built a second time); build it from runner.model, or let the '
            'runner build it from optim_wrapper')
    else:
        if missing:
            replaced = [
                n for n, p in missing
                if any(f.shape == p.shape for f in foreign)
            ]
            names = summarize(n for n, _ in missing)
            if replaced:
                parts.append(
                    f'{len(missing)} trainable parameters are not in the '
                    f'optimizer: {names}. {summarize(replaced)} replaced '
                    'parameters the optimizer still holds (a hook or '
                    'load step assigned a new nn.Parameter): the optimizer '
                    'updates the old tensors, which the model no longer '
                    'uses; change the data in place (param.data.copy_) '
                    'or build the model that way in its config')
            else:
                parts.append(
                    f'{len(missing)} trainable parameters are not in the '
                    f'optimizer: {names}. They get gradients that are '
                    'never applied: they were added after the optimizer '
                    'was built (an adapter or PEFT injection in a hook, '
                    'requires_grad switched on for parameters a custom '
                    'constructor had left out); add them in the model '
                    'config, before the runner builds the optimizer')
        if foreign and not any(f.shape == p.shape for f in foreign
                               for _, p in missing):
            shapes = summarize(str(tuple(p.shape)) for p in foreign)
            parts.append(
                f'the optimizer holds {len(foreign)} parameters that are '
                f'not in the model (shapes {shapes}): modules removed or '
                'replaced after the optimizer was built')
    raise OptimizerCoverageError('; '.join(parts))


def check_master_weights(model: nn.Module,
                         optimizer: torch.optim.Optimizer) -> None:
    """Raise :class:`PrecisionError` when the optimizer would update
    trainable weights held in float16 or bfloat16.

    Mixed precision keeps float32 master weights and runs the forward in
    half precision; an optimizer stepping half-precision weights loses
    every update below the weight's rounding step (1/1024 of the weight in
    float16, 1/128 in bfloat16), and Adam's eps underflows in float16.
    """
    names = {id(p): n for n, p in model.named_parameters()}
    half = {}
    for p in optimizer_params(optimizer):
        if p.requires_grad and p.dtype in (torch.float16, torch.bfloat16):
            half.setdefault(str(p.dtype).replace('torch.', ''),
                            []).append(names.get(id(p), '?'))
    if not half:
        return
    count = sum(len(v) for v in half.values())
    dtypes = ' and '.join(half)
    raise PrecisionError(
        f'{count} trainable parameters are {dtypes} '
        f'({summarize([n for v in half.values() for n in v])}): the '
        'optimizer would update half-precision weights, where an update '
        'below the weight\'s rounding step (1/1024 of it in float16, 1/128 '
        'in bfloat16) is lost and Adam\'s eps underflows. Keep the weights '
        'in float32 (no model.half() / .to(bfloat16)) and train with AMP '
        '(AmpGradSanityOptimWrapper, or --amp)')


def trainable_signature(params: List[nn.Parameter]) -> tuple:
    """Cheap fingerprint of which parameters train (identity and flag)."""
    return tuple(id(p) for p in params if p.requires_grad)
