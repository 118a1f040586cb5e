"""What becomes of a step whose loss or gradients are not finite.

It is never applied. In the strict window (or with ``policy='raise'``) it
stops the run; after that it is skipped, counted and reported, and too
many skips in a row stop the run. The message follows the evidence: a
non-finite loss is a forward problem (or a non-finite sample, named); a
finite loss with non-finite gradients is a backward problem; either after
the loss or gradient norm grew 10x is the end of a divergence.
"""
from typing import Any, Callable, List, Mapping, Optional

from .errors import (NonFiniteGradError, NonFiniteLossError,
                     TooManySkippedStepsError)
from .events import SanityEvents
from .grad_report import GradNorms, summarize
from .rerun import StepRerun, nonfinite_batch_entry

POLICIES = ('skip', 'raise')


class StepGuard:
    """Reports and counts non-finite steps.

    Args:
        events: Where findings go.
        policy: ``'skip'`` or ``'raise'`` after the strict window.
        max_consecutive_skips: Stop after this many skips in a row.
        locate: Re-run the step to name the module or backward op.
    """

    def __init__(self,
                 events: SanityEvents,
                 policy: str = 'skip',
                 max_consecutive_skips: int = 5,
                 locate: bool = True) -> None:
        if policy not in POLICIES:
            raise ValueError(
                f'sanity policy must be one of {POLICIES}, got {policy!r} '
                '(steps with NaN/Inf are never applied)')
        self.events = events
        self.policy = policy
        self.max_consecutive_skips = max_consecutive_skips
        self.locate = locate
        self.skipped_steps = 0
        self.consecutive_skips = 0

    def applied(self) -> None:
        """A good step ends a streak of skips."""
        self.consecutive_skips = 0

    def nonfinite_loss(self, iteration: int, strict: bool, loss: float,
                       bad_terms: List[str], values: Mapping[str, float],
                       growth: Optional[str], lr: str, batch: Any,
                       rerun: Callable[[], StepRerun]) -> bool:
        """Report a non-finite loss; returns False (do not step)."""
        detail = (f'{bad_terms[0]} = {values[bad_terms[0]]}'
                  if bad_terms else f'the total loss = {loss}')
        message = f'non-finite loss at iteration {iteration}: {detail}'
        if growth:
            cause = 'divergence'
            message += (f' after {growth}: the run diverged. {lr}. Lower '
                        'the learning rate or lengthen the warm-up')
        else:
            bad_input = nonfinite_batch_entry(batch)
            if bad_input:
                cause = 'nonfinite_data'
                message += (f'; the input batch itself is non-finite: '
                            f'{bad_input}. Fix the sample or the transform '
                            'that produced it')
            else:
                cause = 'nonfinite_forward'
                module = (
                    rerun().first_nonfinite_module(batch)
                    if self.locate and batch is not None else None)
                message += (
                    '. A non-finite loss is a forward problem' +
                    (f'; first non-finite output: {module}' if module else
                     '') + ': look for log of 0, division by 0 or exploding '
                    'activations on that path')
        return self._bad_step(NonFiniteLossError, cause, message, strict)

    def nonfinite_grads(self, iteration: int, strict: bool, loss: float,
                        norms: GradNorms, growth: Optional[str], lr: str,
                        batch: Any, rerun: Callable[[], StepRerun]) -> bool:
        """Report non-finite gradients; returns False (do not step)."""
        message = (f'non-finite gradients at iteration {iteration} with a '
                   f'finite loss ({loss:.4g}); first NaN/Inf in: '
                   f'{summarize(norms.nonfinite())}')
        if growth:
            return self._bad_step(
                NonFiniteGradError, 'divergence',
                f'{message}, after {growth}: the run diverged. {lr}. Lower '
                'the learning rate or lengthen the warm-up', strict)
        # A non-finite value in the forward pass that the loss masks from
        # its value (an assignment, a where, a mask) still reaches the
        # gradient (0 * inf = NaN): that is a forward or data problem.
        bad_input = nonfinite_batch_entry(batch)
        if bad_input:
            return self._bad_step(
                NonFiniteGradError, 'nonfinite_data',
                f'{message}; the input batch itself is non-finite: '
                f'{bad_input}, and the loss hides it from its value but not '
                'from the gradient. Fix the sample or the transform that '
                'produced it', strict)
        module = (
            rerun().first_nonfinite_module(batch, masks_allowed=True)
            if self.locate and batch is not None else None)
        if module:
            return self._bad_step(
                NonFiniteGradError, 'nonfinite_forward',
                f'{message}; first non-finite output in the forward pass: '
                f'{module}. The loss hides it from its value (an '
                'assignment, a where or a mask drops it) but not from the '
                'gradient, so it is a forward problem: look for log of 0, '
                'division by 0 or exploding activations on that path',
                strict)
        op = (
            rerun().backward_op(batch)
            if self.locate and batch is not None else None)
        message += ((f'; backward op: {op}' if op else '') +
                    '. A finite loss with NaN gradients is a backward '
                    'problem: run the loss in an FP32 loss region '
                    '(FP32LossRegionHook), cast labels as well as '
                    'predictions, and guard eigh/solve against degenerate '
                    'inputs.')
        return self._bad_step(NonFiniteGradError, 'nonfinite_backward',
                              message, strict)

    def _bad_step(self, error: type, cause: str, message: str,
                  strict: bool) -> bool:
        if strict or self.policy == 'raise':
            self.events.error(error, message, cause=cause, check='step')
        self.skipped_steps += 1
        self.consecutive_skips += 1
        self.events.warning(
            cause,
            f'{message} Step skipped ({self.consecutive_skips} in a row, '
            f'{self.skipped_steps} in total); weights unchanged.',
            check='step')
        if self.consecutive_skips > self.max_consecutive_skips:
            self.events.error(
                TooManySkippedStepsError,
                f'{self.consecutive_skips} consecutive steps skipped for '
                'non-finite values (max_consecutive_skips='
                f'{self.max_consecutive_skips}); the run is not recovering. '
                f'Last: {message}',
                cause=cause,
                check='step')
        return False
