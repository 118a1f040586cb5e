"""Update size: how far one optimizer step moves the weights.

``||dw|| / ||w||`` per report group (backbone, neck, head, other) over the
first iterations. All zero means nothing learns; far above the usual
range (about 1e-4 to 1e-1 for a first step) predicts divergence. The
ratio is measured at the current learning rate and extrapolated to the
base lr, since SGD and Adam steps scale linearly with lr: a warm-up that
starts at 1% of a lr 100x too large still shows at iteration 1.
"""
from collections import OrderedDict
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import torch

from .divergence import describe_lr
from .grad_report import group_of, summarize


def snapshot(params: Sequence[torch.Tensor]) -> List[torch.Tensor]:
    """Copies of ``params`` taken before the step."""
    return [p.detach().clone() for p in params]


def relative_updates(
    names: Sequence[str], params: Sequence[torch.Tensor],
    before: Sequence[torch.Tensor], groups: Mapping[str, Sequence[str]]
) -> Tuple[Dict[str, Tuple[float, float]], Optional[float]]:
    """``group -> (||dw||, ||w||)`` of one step, and the cosine between the
    step and the gradient it was taken from (None without gradients);
    one host sync. Call it before ``zero_grad``."""
    if not params:
        return OrderedDict(), None
    after = [p.detach() for p in params]
    deltas = torch._foreach_sub(after, list(before))
    pairs = [(p.grad.detach(), d) for p, d in zip(params, deltas)
             if p.grad is not None]
    direction = []
    if pairs:
        # The step's component along the gradient: a descent step has a
        # negative inner product with it (SGD, momentum, Adam's sign-like
        # first step alike).
        direction = [
            sum((g.float() * d.float()).sum() for g, d in pairs),
            torch.stack(torch._foreach_norm([g for g, _ in pairs])).norm(),
            torch.stack(torch._foreach_norm([d for _, d in pairs])).norm()
        ]
    norms = torch.stack(
        list(torch._foreach_norm(deltas)) +
        list(torch._foreach_norm(list(before))) +
        [t.float().reshape(()) for t in direction]).float().tolist()
    n = len(params)
    squares: Dict[str, List[float]] = OrderedDict()
    for name, d, w in zip(names, norms[:n], norms[n:2 * n]):
        acc = squares.setdefault(group_of(name, groups), [0.0, 0.0])
        acc[0] += d * d
        acc[1] += w * w
    cosine = None
    if direction:
        dot, gnorm, dnorm = norms[2 * n:]
        if gnorm > 0 and dnorm > 0:
            cosine = dot / (gnorm * dnorm)
    return OrderedDict(
        (k, (d**0.5, w**0.5)) for k, (d, w) in squares.items()), cosine


def lr_scale(optimizer: torch.optim.Optimizer) -> Optional[float]:
    """base lr / current lr of the optimizer (the largest over groups),
    None if every current lr is 0."""
    scales = [
        g.get('initial_lr', g['lr']) / g['lr'] for g in optimizer.param_groups
        if g['lr'] > 0
    ]
    return max(scales) if scales else None


def lr_zero_fraction(
        optimizer: torch.optim.Optimizer) -> Tuple[float, List[str]]:
    """Fraction of the trainable weight elements whose lr is 0, and the
    lrs of the groups that still learn (``'lr 0.01: 3 tensors'``)."""
    total = zero = 0
    moving: Dict[float, int] = OrderedDict()
    for group in optimizer.param_groups:
        for p in group['params']:
            if not p.requires_grad:
                continue
            total += p.numel()
            if group['lr'] == 0:
                zero += p.numel()
            else:
                moving[group['lr']] = moving.get(group['lr'], 0) + 1
    described = [f'lr {lr:.3g}: {n} tensors' for lr, n in moving.items()]
    return (zero / total if total else 0.0), described


def zero_update_cause(optimizer: torch.optim.Optimizer) -> Tuple[str, bool]:
    """Why a step changed nothing, and whether that is certain now.

    Returns ``(reason, certain)``: an lr of 0 set in the optimizer config is
    certain at once; an lr a scheduler brought to 0 may be a warm-up that
    starts at 0, so it is certain only if it lasts.
    """
    groups = optimizer.param_groups
    if any(g['lr'] > 0 for g in groups):
        return ('every learning rate is > 0 but no weight moved: the '
                'parameters with gradients are not the ones the optimizer '
                'steps', True)
    bases = [g.get('initial_lr', g['lr']) for g in groups]
    if all(b == 0 for b in bases):
        return ('the optimizer lr is 0 in every param group (optim_wrapper.'
                'optimizer.lr, or paramwise_cfg lr_mult=0 on every '
                'parameter)', True)
    return ('a param_scheduler holds the learning rate at 0 (base lr '
            f'{max(bases):g}): check its factors (start_factor, factor, '
            'gamma, eta_min) and begin/end', False)


def update_finding(updates: Mapping[str, Tuple[float, float]],
                   optimizer: torch.optim.Optimizer,
                   max_ratio: float,
                   zero_before: bool,
                   schedulers: Sequence[Any] = (),
                   cosine: Optional[float] = None,
                   max_cosine: float = 0.3) -> Optional[Tuple[str, str, bool]]:
    """What one step's update sizes say: ``(cause, message, certain)``, or
    None when the step looks healthy.

    All-zero updates name the lr as the cause (``certain`` is False for a
    scheduler at 0 on the first such step, which a warm-up from 0 can
    explain: ``zero_before`` says the previous step was zero too); lr 0 on
    99% of the trainable weights is a freeze by lr; an update far above
    ``max_ratio`` (extrapolated to the base lr) predicts divergence, and
    so does a step along the gradient (``cosine`` above ``max_cosine``:
    weight decay alone cannot turn a descent step that far).
    """
    if all(d == 0 for d, _ in updates.values()):
        reason, certain = zero_update_cause(optimizer)
        return ('no_update', f'the optimizer step changed no weight: '
                f'{reason}. Nothing learns', certain or zero_before)
    frozen, moving = lr_zero_fraction(optimizer)
    if frozen >= 0.99:
        return ('frozen', f'the learning rate is 0 for {frozen:.2%} of the '
                'trainable weights (paramwise_cfg lr_mult=0, or a custom '
                f'key that matches every parameter); only {summarize(moving)}'
                ' still learn. To freeze parameters set requires_grad=False '
                '(frozen_stages); otherwise fix the lr_mult', True)
    if cosine is not None and cosine > max_cosine:
        return ('divergence', 'the optimizer step moved the weights up the '
                f'gradient (cosine(dw, grad) = {cosine:+.2f}; a descent step '
                'is negative): every step climbs the loss. A negative lr or '
                'lr_mult, maximize=True, or an optimizer that adds its '
                'update instead of subtracting it', True)
    ratios = {g: (d / w if w > 0 else 0.0) for g, (d, w) in updates.items()}
    scale = lr_scale(optimizer) or 1.0
    group, ratio = max(ratios.items(), key=lambda kv: kv[1])
    if ratio * scale <= max_ratio:
        return None
    at_base = f', {ratio * scale:.3g} at the base lr' if scale > 1 else ''
    return ('divergence', f'one step moved the {group} weights by '
            f'{ratio:.3g} of their norm{at_base} (||dw||/||w||; healthy '
            f'first steps stay below {max_ratio:g}): this predicts '
            f'divergence. {describe_lr(optimizer, schedulers)}. Lower the '
            'learning rate', True)
