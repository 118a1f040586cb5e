"""Divergence: a loss or gradient norm growing by orders of magnitude.

The tracker sees the host values the step guard fetched anyway (loss and
total gradient norm of every step), so it costs no device work.
"""
import statistics
from collections import deque
from typing import Any, Deque, List, Optional, Sequence, Tuple


class DivergenceTracker:
    """Flags a run whose gradient norm or loss grows far past its own
    level.

    * Gradient norm: the median of the last 3 steps against the lowest
      median of any ``window`` consecutive steps so far (a healthy run's
      norm falls as it learns, so its own floor is the reference);
    * loss: the median of the last 3 steps against the median of the first
      ``window`` steps.

    Args:
        grad_factor: Growth of the gradient norm that counts as divergence.
        loss_factor: Growth of the loss that counts as divergence.
        window: Steps per reference window.
    """

    def __init__(self,
                 grad_factor: float = 1e4,
                 loss_factor: float = 1e2,
                 window: int = 5) -> None:
        self.grad_factor = grad_factor
        self.loss_factor = loss_factor
        self.window = window
        self._grads: Deque[Tuple[int, float]] = deque(maxlen=window)
        self._recent: Deque[Tuple[int, float, float]] = deque(maxlen=3)
        self._first_losses: List[float] = []
        self.grad_floor: Optional[Tuple[float, int, int]] = None

    def update(self, iteration: int, loss: float,
               grad_norm: float) -> Optional[str]:
        """Add a step with finite values; a sentence if it diverges."""
        self._recent.append((iteration, loss, grad_norm))
        if len(self._first_losses) < self.window:
            self._first_losses.append(abs(loss))
        self._grads.append((iteration, grad_norm))
        if len(self._grads) == self.window:
            level = statistics.median(g for _, g in self._grads)
            if self.grad_floor is None or level < self.grad_floor[0]:
                self.grad_floor = (level, self._grads[0][0], iteration)
        if len(self._recent) < 3:
            return None
        return self.growth(self.grad_factor, self.loss_factor)

    def growth(self, grad_factor: float, loss_factor: float) -> Optional[str]:
        """A sentence if the last steps grew past ``grad_factor`` x the
        gradient-norm floor or ``loss_factor`` x the starting loss."""
        if not self._recent:
            return None
        grad_now = statistics.median(g for _, _, g in self._recent)
        loss_now = statistics.median(abs(v) for _, v, _ in self._recent)
        parts = []
        if self.grad_floor is not None and self.grad_floor[0] > 0:
            level, first, last = self.grad_floor
            ratio = grad_now / level
            if ratio >= grad_factor:
                parts.append(f'the gradient norm grew {ratio:.2g}x, from '
                             f'{level:.3g} at iterations {first}-{last} to '
                             f'{grad_now:.3g}')
        if len(self._first_losses) == self.window:
            start = statistics.median(self._first_losses)
            if start > 0 and loss_now / start >= loss_factor:
                parts.append(f'the loss grew {loss_now / start:.2g}x, from '
                             f'{start:.4g} over the first {self.window} '
                             f'iterations to {loss_now:.4g}')
        return '; '.join(parts) or None

    def recent_growth(self) -> Optional[str]:
        """Whether the values just before a non-finite step had already
        grown 10x: then the NaN is the end of a divergence."""
        return self.growth(10.0, 10.0)


def describe_lr(optimizer: Any, schedulers: Sequence[Any] = ()) -> str:
    """``'lr 0.02 (base 0.02); warm-up: LinearLR from 0.01x over
    iterations 0-100'``: the current and base learning rates of the
    optimizer's groups, and the warm-up among ``schedulers``."""
    groups = getattr(optimizer, 'param_groups', [])
    lrs = sorted({g['lr'] for g in groups})
    bases = sorted({g.get('initial_lr', g['lr']) for g in groups})

    def span(values):
        if not values:
            return '?'
        return (f'{values[0]:.3g}'
                if len(values) == 1 else f'{values[0]:.3g}-{values[-1]:.3g}')

    text = f'lr {span(lrs)} (base {span(bases)})'
    warmups = [
        s for s in schedulers if getattr(s, 'param_name', 'lr') == 'lr'
        and getattr(s, 'start_factor', 1.0) < 1.0
    ]
    if warmups:
        s = warmups[0]
        unit = 'epochs' if getattr(s, 'by_epoch', False) else 'iterations'
        text += (f'; warm-up: {type(s).__name__} from '
                 f'{s.start_factor:g}x over {unit} {s.begin}-{s.end}')
    else:
        text += '; no warm-up'
    return text
