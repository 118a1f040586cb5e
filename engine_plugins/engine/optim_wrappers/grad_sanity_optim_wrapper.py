"""Optim wrappers that check the loss and the gradients between backward
and ``optimizer.step()``.

MMEngine has no hook point there: ``OptimWrapper.update_params`` runs
backward, step and zero_grad in one call, so ``after_train_iter`` only sees
gradients that are already gone. These subclasses override
``update_params``; :class:`~engine_plugins.engine.hooks.GradSanityHook`
configures them and reports what they found.
"""
import contextlib
import logging
import math
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence

import torch
from mmengine.logging import print_log
from mmengine.optim import AmpOptimWrapper, OptimWrapper

from engine_plugins.registry import OPTIM_WRAPPERS
from ..sanity.errors import (DeadLossError, NoGradientError,
                             NonFiniteGradError, TooManySkippedStepsError)
from ..sanity.grad_report import (GradNorms, dead_loss_terms, format_norms,
                                  summarize)

POLICIES = ('raise', 'skip', 'warn')


class GradSanityMixin:
    """The checks; mixed into :class:`OptimWrapper` and
    :class:`AmpOptimWrapper` below.

    Iterations ``< strict_iters`` are checked fully with policy ``raise``;
    after that every ``interval``-th iteration is checked with ``policy``.
    With ``policy='skip'`` gradient finiteness is also checked on every
    step (one device-to-host sync per step) so bad steps can be skipped.
    """

    amp_variant: Optional[str] = None

    def configure_sanity(self,
                         model: Optional[torch.nn.Module] = None,
                         strict_iters: int = 3,
                         interval: int = 50,
                         policy: str = 'warn',
                         max_consecutive_skips: int = 5,
                         groups: Optional[Mapping[str, Sequence[str]]] = None,
                         locate: bool = False) -> None:
        if policy not in POLICIES:
            raise ValueError(
                f'GradSanityHook policy must be one of {POLICIES}, got '
                f'{policy!r}')
        self.sanity_model = model
        self.strict_iters = strict_iters
        self.check_interval = interval
        self.policy = policy
        self.max_consecutive_skips = max_consecutive_skips
        self.norm_groups = groups
        self.locate = locate
        self.sanity_iter = 0
        self.skipped_steps = getattr(self, 'skipped_steps', 0)
        self.consecutive_skips = 0
        self.last_norms: Optional[Dict[str, float]] = None
        self.last_report: Optional[str] = None
        self._losses: Optional[Mapping[str, Any]] = None
        self._batch: Any = None
        self._runner_iter: Optional[int] = None

    # Filled in by GradSanityHook around each iteration.
    def record_losses(self, losses: Mapping[str, Any]) -> None:
        self._losses = losses

    def record_batch(self,
                     data_batch: Any,
                     runner_iter: Optional[int] = None) -> None:
        self._batch = data_batch
        self._runner_iter = runner_iter

    @property
    def sanity_configured(self) -> bool:
        return hasattr(self, 'sanity_iter')

    def _named_params(self) -> List:
        if self.sanity_model is not None:
            return list(self.sanity_model.named_parameters())
        return [(f'param_groups.{g}.{i}', p)
                for g, group in enumerate(self.optimizer.param_groups)
                for i, p in enumerate(group['params'])]

    def _grad_scale(self) -> float:
        return 1.0

    def update_params(self,
                      loss: torch.Tensor,
                      step_kwargs: Optional[Dict] = None,
                      zero_kwargs: Optional[Dict] = None) -> None:
        if not self.sanity_configured:
            return super().update_params(loss, step_kwargs, zero_kwargs)
        it = self.sanity_iter
        self.sanity_iter += 1
        strict = it < self.strict_iters
        full_check = strict or (self.check_interval > 0
                                and it % self.check_interval == 0)
        policy = 'raise' if strict else self.policy
        self.last_norms = self.last_report = None
        # Messages count iterations like the progress line (1-based, global
        # across resumes) when the hook tells us the runner's iteration.
        step = (self._runner_iter if self._runner_iter is not None else it) + 1
        if full_check:
            self._check_loss(loss, step, policy)
        self.backward(self.scale_loss(loss))
        if not self.should_update():
            return
        if full_check or policy == 'skip':
            if not self._check_grads(loss, step, policy, full_check):
                self._skip_step(step)
                return
        self.consecutive_skips = 0
        self.step(**(step_kwargs or {}))
        self.zero_grad(**(zero_kwargs or {}))

    # -- checks --------------------------------------------------------------
    def _fail(self, error: Exception, policy: str) -> None:
        if policy == 'raise':
            raise error
        print_log(
            f'{type(error).__name__}: {error}',
            logger='current',
            level=logging.WARNING)

    def _check_loss(self, loss: torch.Tensor, step: int, policy: str) -> None:
        dead = dead_loss_terms(self._losses or {})
        zero = [k for k, v in dead.items() if v == 'zero']
        nonfinite = {k: v for k, v in dead.items() if v.startswith('is non')}
        broken = {
            k: v
            for k, v in dead.items() if k not in zero and k not in nonfinite
        }
        terms = [k for k in (self._losses or {}) if 'loss' in k]
        where = f'loss check at iteration {step}'
        if not loss.requires_grad or loss.grad_fn is None or (
                terms and len(broken) + len(zero) == len(terms)):
            parts = [f'{k} {v}' for k, v in broken.items()]
            if zero:
                parts.append(f'{", ".join(zero)} '
                             f'{"is" if len(zero) == 1 else "are"} 0.0')
            detail = '; '.join(parts) or 'the total loss is detached'
            raise DeadLossError(
                f'{where}: the loss cannot train the model: {detail}. '
                'Backward would give no gradients (under AMP GradScaler '
                "would fail with 'No inf checks were recorded for this "
                "optimizer'). Every loss term must be computed from the "
                'model outputs; an all-zero loss usually means predictions '
                'were never matched to targets (e.g. raw head outputs not '
                'decoded or assigned).')
        if broken:
            self._fail(
                DeadLossError(f'{where}: dead loss terms: ' +
                              '; '.join(f'{k} {v}'
                                        for k, v in broken.items())), policy)
        if nonfinite or not bool(torch.isfinite(loss.detach()).all()):
            detail = '; '.join(f'{k} {v}' for k, v in nonfinite.items())
            self._fail(
                DeadLossError(f'{where}: the loss is non-finite' +
                              (f': {detail}' if detail else '')), policy)
        if zero:
            print_log(
                f'{where}: {", ".join(zero)} = 0.0 for this batch',
                logger='current',
                level=logging.WARNING)

    def _check_grads(self, loss: torch.Tensor, step: int, policy: str,
                     full_check: bool) -> bool:
        """Return False when the step must be skipped."""
        norms = GradNorms(self._named_params(), self._grad_scale())
        where = f'iteration {step}'
        bad = norms.nonfinite()
        if bad and not self._nonfinite_is_bug():
            return True  # loss-scale overflow: GradScaler skips this step
        if bad:
            op = self._locate_backward_op() if self.locate else None
            loss_value = loss.detach().float().sum().item()
            error = NonFiniteGradError(
                f'non-finite gradients at {where} with a '
                f"{'finite' if math.isfinite(loss_value) else 'non-finite'} "
                f'loss ({loss_value:.4g}); first NaN/Inf in: '
                f'{summarize(bad)}' + (f'; backward op: {op}' if op else '') +
                '. A finite loss with NaN gradients is a backward problem: '
                'run the loss in an FP32 loss region (FP32LossRegionHook), '
                'cast labels as well as predictions, and guard eigh/solve '
                'against degenerate inputs' +
                ('' if self.locate else
                 '; set GradSanityHook(locate=True) to name the op') + '.')
            if policy == 'skip':
                return False
            self._fail(error, policy)
            return True
        if not full_check:
            return True
        with_grad, trainable, no_grad, zero_grad = norms.coverage()
        if with_grad == 0 and trainable > 0:
            self._fail(
                NoGradientError(
                    f'{where}: 0/{trainable} parameters have non-zero '
                    f'gradients; no grad: {summarize(no_grad + zero_grad)}. '
                    'The loss does not depend on the trainable parameters.'),
                policy)
        elif no_grad:
            print_log(
                f'{where}: {with_grad}/{trainable} parameters have non-zero '
                f'gradients; no grad: {summarize(no_grad)}' +
                (f'; zero grad: {summarize(zero_grad)}' if zero_grad else ''),
                logger='current',
                level=logging.WARNING)
        elif zero_grad:
            # In the graph but nothing flowed: normal for parts without
            # targets in this batch or behind a zero-initialised layer, so
            # it is information, not a warning.
            print_log(
                f'{where}: {with_grad}/{trainable} parameters have non-zero '
                f'gradients; zero grad: {summarize(zero_grad)} (in the '
                'graph, but nothing flowed back this step: e.g. a detection '
                'level without positives, or LoRA A while B is still zero)',
                logger='current',
                level=logging.INFO)
        self.last_norms = norms.groups(self.norm_groups)
        self.last_report = format_norms(self.last_norms, ok=True)
        return True

    def _skip_step(self, step: int) -> None:
        self.zero_grad()
        self.skipped_steps += 1
        self.consecutive_skips += 1
        print_log(
            f'iteration {step}: non-finite gradients, step skipped '
            f'({self.consecutive_skips} in a row, {self.skipped_steps} in '
            'total); weights unchanged',
            logger='current',
            level=logging.WARNING)
        if self.consecutive_skips > self.max_consecutive_skips:
            raise TooManySkippedStepsError(
                f'{self.consecutive_skips} consecutive steps skipped for '
                'non-finite gradients (max_consecutive_skips='
                f'{self.max_consecutive_skips}); the run is not recovering')

    def _nonfinite_is_bug(self) -> bool:
        """Non-finite grads are a bug unless a loss scaler caused them."""
        return True

    # -- re-running one iteration -------------------------------------------
    def _rerun_backward(self, anomaly: bool) -> Optional[str]:
        """Re-run forward/backward of the recorded batch without the loss
        scale; return the anomaly message (or ``''`` if none). Parameters,
        buffers, gradients and RNG state are restored afterwards."""
        model, batch = self.sanity_model, self._batch
        if model is None or batch is None:
            return None
        params = list(model.parameters())
        grads = [p.grad for p in params]
        buffers = {k: v.clone() for k, v in model.named_buffers()}
        rng = torch.get_rng_state()
        cuda_rng = (
            torch.cuda.get_rng_state_all()
            if torch.cuda.is_available() else None)
        message = ''
        try:
            for p in params:
                p.grad = None
            anomaly_ctx = (
                torch.autograd.detect_anomaly(
                    check_nan=True) if anomaly else contextlib.nullcontext())
            with anomaly_ctx, self._autocast():
                data = model.data_preprocessor(batch, True)
                losses = model._run_forward(data, mode='loss')
                total, _ = type(model).parse_losses(model, losses)
                total.backward()
            if any(
                    p.grad is not None
                    and not bool(torch.isfinite(p.grad).all())
                    for p in params):
                message = 'non-finite'
        except RuntimeError as exc:
            message = str(exc)
        finally:
            for p, g in zip(params, grads):
                p.grad = g
            for k, v in model.named_buffers():
                v.copy_(buffers[k])
            torch.set_rng_state(rng)
            if cuda_rng is not None:
                torch.cuda.set_rng_state_all(cuda_rng)
        return message

    def _autocast(self):
        return contextlib.nullcontext()

    def _locate_backward_op(self) -> Optional[str]:
        message = self._rerun_backward(anomaly=True)
        if not message:
            return None
        match = re.search(r"Function '(\w+)' returned nan", message)
        return match.group(1) if match else message.splitlines()[0][:200]


@OPTIM_WRAPPERS.register_module()
class GradSanityOptimWrapper(GradSanityMixin, OptimWrapper):
    """:class:`OptimWrapper` with loss and gradient checks between backward
    and step.

    Arguments are those of :class:`OptimWrapper`; the checks are configured
    by ``GradSanityHook`` (in ``default_hooks`` of the default runtime).
    Without that hook it behaves exactly like ``OptimWrapper``.

    Example:
        >>> optim_wrapper = dict(
        ...     type='GradSanityOptimWrapper',
        ...     optimizer=dict(type='SGD', lr=0.01, momentum=0.9))
    """

    amp_variant = 'AmpGradSanityOptimWrapper'


@OPTIM_WRAPPERS.register_module()
class AmpGradSanityOptimWrapper(GradSanityMixin, AmpOptimWrapper):
    """:class:`AmpOptimWrapper` with the same checks. Runs fp16/bf16 on GPU
    and bf16 on CPU (see ``engine_plugins.compat``).

    Under a dynamic fp16 loss scale, non-finite gradients are first assumed
    to be a scale overflow. The iteration is re-run once without the scale;
    only if the gradients are still non-finite is it reported as a bug.
    Otherwise GradScaler skips the step and lowers the scale, as usual.

    Example:
        >>> optim_wrapper = dict(
        ...     type='AmpGradSanityOptimWrapper', dtype='float16',
        ...     loss_scale='dynamic',
        ...     optimizer=dict(type='AdamW', lr=1e-4))
    """

    def _grad_scale(self) -> float:
        if self.loss_scaler.is_enabled():
            return float(self.loss_scaler.get_scale())
        return 1.0

    def _autocast(self):
        from mmengine.runner.amp import autocast
        return autocast(dtype=self.cast_dtype)

    def _nonfinite_is_bug(self) -> bool:
        if not self.loss_scaler.is_enabled():
            return True
        message = self._rerun_backward(anomaly=False)
        if message is None:
            print_log(
                'non-finite gradients under a dynamic loss scale and no '
                'recorded batch to re-run: assuming a scale overflow',
                logger='current',
                level=logging.WARNING)
            return False
        return message != ''
