"""The learning rate during the run: no weight moves once it is 0, and a
schedule that multiplies it far past its configured base value is about
to diverge. Host values only (the optimizer's param groups)."""
from typing import Any, Optional, Sequence, Tuple

from .divergence import describe_lr


def lr_at_zero(optimizer: Any, iteration: int, max_iters: Optional[int],
               schedulers: Sequence[Any] = ()) -> Optional[str]:
    """A sentence if every group's lr is 0 with iterations still to run
    (the very last iteration of a schedule that decays to 0 is fine)."""
    groups = optimizer.param_groups
    if any(g['lr'] > 0 for g in groups):
        return None
    if max_iters is not None and iteration >= max_iters:
        return None
    left = f', {max_iters - iteration} iterations before the end' \
        if max_iters else ''
    ended = [
        f'{type(s).__name__}(end={s.end}'
        f'{", by_epoch" if getattr(s, "by_epoch", False) else ""})'
        for s in schedulers if getattr(s, 'end', None) is not None
        and getattr(s, 'end', 0) < 10**8
    ]
    return (f'the learning rate is 0 in every param group at iteration '
            f'{iteration}{left}: nothing learns from here on. A scheduler '
            'decayed to 0 too early' +
            (f' ({", ".join(ended)}: is its end counted in iterations where '
             'epochs were meant?)' if ended else '') + '. ' +
            describe_lr(optimizer, schedulers))


def lr_growth(optimizer: Any,
              factor: float = 10.0) -> Optional[Tuple[float, float, float]]:
    """``(lr, base, ratio)`` of the group whose lr is furthest above its
    configured base (``initial_lr``, or a cyclic schedule's ``max_lr``), if
    that is at least ``factor`` times."""
    worst = None
    for group in optimizer.param_groups:
        base = max(group.get('initial_lr', group['lr']),
                   group.get('max_lr', 0.0))
        if base <= 0:
            continue
        ratio = group['lr'] / base
        if ratio >= factor and (worst is None or ratio > worst[2]):
            worst = (group['lr'], base, ratio)
    return worst
