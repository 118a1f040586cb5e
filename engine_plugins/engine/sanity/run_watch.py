"""Checks of every applied step that need only host values: divergence,
the learning rate, gradients that vanish, weights restored to their
initial values."""
from typing import Any, List, Optional, Sequence

from .divergence import DivergenceTracker, describe_lr
from .errors import DivergenceError, NoUpdateError
from .events import SanityEvents
from .lr_watch import lr_at_zero, lr_growth
from .rerun import input_scale


class RunWatch:
    """Watches the run step by step.

    Args:
        events: Where findings go.
        divergence: :class:`DivergenceTracker` arguments.
        max_lr_growth: Warn at this multiple of an lr's configured base.
        lr_grace: Iterations during which an lr of 0 is left to the
            update-size check (a warm-up may start at 0).
    """

    def __init__(self,
                 events: SanityEvents,
                 divergence: Optional[dict] = None,
                 max_lr_growth: float = 10.0,
                 lr_grace: int = 3) -> None:
        self.events = events
        self.divergence = DivergenceTracker(**(divergence or {}))
        self.max_lr_growth = max_lr_growth
        self.lr_grace = lr_grace
        self._init_weights: Optional[List[float]] = None
        self._moved = False
        self._applied = 0
        self._had_gradients = False

    def moved(self) -> None:
        """A measured step changed the weights."""
        self._moved = True

    def reset_weights(self) -> None:
        """The trainable set changed: fingerprint it again."""
        self._init_weights, self._moved = None, False

    def step(self, iteration: int, loss: float, grad_norm: float,
             weights: Optional[List[float]], optimizer: Any,
             schedulers: Sequence[Any],
             max_iters: Optional[int], batch: Any) -> None:
        """An applied step with finite values (``weights``: a fingerprint
        of the weights before the step, one value per tensor; None skips
        the restored-weights check)."""
        diverging = self.divergence.update(iteration, loss, grad_norm)
        if diverging:
            lr = describe_lr(optimizer, schedulers)
            scale = input_scale(batch)
            self.events.error(
                DivergenceError,
                f'divergence at iteration {iteration}: {diverging}. ' +
                (f'Likely cause: {scale}' if scale else
                 f'{lr}. Lower the learning rate or lengthen the warm-up '
                 '(or clip gradients with optim_wrapper.clip_grad)'),
                cause='input_normalization' if scale else None,
                check='divergence')
        if iteration > self.lr_grace:
            stopped = lr_at_zero(optimizer, iteration, max_iters, schedulers)
            if stopped:
                self.events.error(
                    NoUpdateError,
                    f'lr check, iteration {iteration}: {stopped}',
                    check='lr')
        grown = lr_growth(optimizer, self.max_lr_growth)
        if grown:
            value, base, ratio = grown
            self.events.warning(
                'divergence',
                f'lr check, iteration {iteration}: the learning rate '
                f'{value:.3g} is {ratio:.3g}x its configured base '
                f'{base:.3g}: a scheduler or hook keeps raising it (a gamma '
                'above 1, an lr range test left on?); this run is heading '
                'for divergence',
                check='lr',
                once='lr_growth')
        self._gradients(iteration, grad_norm)
        if weights is not None:
            self._weights(iteration, weights)
        self._applied += 1

    def _gradients(self, iteration: int, grad_norm: float) -> None:
        if grad_norm > 0:
            self._had_gradients = True
        elif self._had_gradients:
            self.events.warning(
                'no_gradient',
                f'iteration {iteration}: every gradient is exactly 0 now, '
                'and was not before: the network went dead (saturated or '
                'dead activations, a collapse after too large a step)',
                check='coverage',
                once='gradients_vanished')

    def _weights(self, iteration: int, weights: List[float]) -> None:
        if self._init_weights is None:
            self._init_weights = weights
        elif weights != self._init_weights:
            self._moved = True
        elif self._moved:
            self.events.error(
                NoUpdateError,
                f'weight check, iteration {iteration}: the weights are '
                'exactly their initial values again after '
                f'{self._applied} applied steps: something outside the '
                'optimizer restores them (a hook that loads or copies '
                'weights back, a swap that is not undone)',
                cause='frozen',
                check='weights')
