"""Optim wrappers that run the sanity monitor between backward and
``optimizer.step()``.

MMEngine has no hook point there: ``OptimWrapper.update_params`` runs
backward, step and zero_grad in one call, so ``after_train_iter`` only sees
gradients that are already gone. These subclasses override
``update_params`` and hand the step to the
:class:`~engine_plugins.engine.sanity.monitor.SanityMonitor` that
:class:`~engine_plugins.engine.hooks.SanityHook` attaches; it decides
whether the step is applied. Without a monitor they behave exactly like
their parents.
"""
import contextlib
from typing import Dict, Optional

import torch
from mmengine.optim import OptimWrapper

from engine_plugins.registry import OPTIM_WRAPPERS
from .portable_amp_optim_wrapper import PortableAmpOptimWrapper


class GradSanityMixin:
    """The seam; mixed into :class:`OptimWrapper` and
    :class:`AmpOptimWrapper` below."""

    amp_variant: Optional[str] = None
    #: The run's ``SanityMonitor``, attached by ``SanityHook``.
    sanity = None

    def update_params(self,
                      loss: torch.Tensor,
                      step_kwargs: Optional[Dict] = None,
                      zero_kwargs: Optional[Dict] = None) -> None:
        monitor = self.sanity
        if monitor is None:
            return super().update_params(loss, step_kwargs, zero_kwargs)
        self.backward(self.scale_loss(loss))
        if not self.should_update():
            return
        self._unscale_grads()
        if monitor.before_step(loss, self._dynamic_scaler()):
            self.step(**(step_kwargs or {}))
            monitor.after_step()
        else:
            self._skip_step()
        self.zero_grad(**(zero_kwargs or {}))

    def _clip_grad(self) -> None:
        """Clip with the total norm the monitor already computed (same
        parameters, same L2 norm), instead of computing it again."""
        monitor = self.sanity
        total = getattr(monitor, 'last_total_tensor', None)
        kwargs = self.clip_grad_kwargs
        if (total is None
                or self.clip_func is not torch.nn.utils.clip_grad_norm_
                or float(kwargs.get('norm_type', 2.0)) != 2.0):
            return super()._clip_grad()
        params = [
            p for group in self.optimizer.param_groups for p in group['params']
            if p.requires_grad and p.grad is not None
        ]
        if params:
            # SanityHook logs train/grad_norm on every step.
            torch.nn.utils.clip_grads_with_norm_(params, kwargs['max_norm'],
                                                 total)

    def _unscale_grads(self) -> None:
        """Bring gradients to their true scale before the checks."""

    def _dynamic_scaler(self):
        """The enabled loss scaler, or None."""
        return None

    def _skip_step(self) -> None:
        """Bookkeeping for a step the monitor refused."""

    def rerun_autocast(self):
        """The autocast context of this wrapper's forward pass."""
        return contextlib.nullcontext()


@OPTIM_WRAPPERS.register_module()
class GradSanityOptimWrapper(GradSanityMixin, OptimWrapper):
    """:class:`OptimWrapper` whose step the sanity monitor guards.

    Arguments are those of :class:`OptimWrapper`; the checks are configured
    by ``SanityHook`` (``default_hooks.sanity`` of the default runtime).

    Example:
        >>> optim_wrapper = dict(
        ...     type='GradSanityOptimWrapper',
        ...     optimizer=dict(type='SGD', lr=0.01, momentum=0.9))
    """

    amp_variant = 'AmpGradSanityOptimWrapper'


@OPTIM_WRAPPERS.register_module()
class AmpGradSanityOptimWrapper(GradSanityMixin, PortableAmpOptimWrapper):
    """:class:`AmpOptimWrapper` whose step the sanity monitor guards. Runs
    fp16/bf16 on GPU and bf16 on CPU (:class:`PortableAmpOptimWrapper`).

    Gradients are unscaled before the checks. Under a dynamic fp16 loss
    scale, non-finite gradients are first assumed to be a scale overflow:
    the step is re-run once without the scale, and only if the gradients
    are still non-finite is it reported as a bug; otherwise GradScaler
    skips the step and lowers the scale, as usual.

    Example:
        >>> optim_wrapper = dict(
        ...     type='AmpGradSanityOptimWrapper', dtype='float16',
        ...     loss_scale='dynamic',
        ...     optimizer=dict(type='AdamW', lr=1e-4))
    """

    def _unscale_grads(self) -> None:
        if self.loss_scaler.is_enabled():
            self.loss_scaler.unscale_(self.optimizer)

    def _dynamic_scaler(self):
        return self.loss_scaler if self.loss_scaler.is_enabled() else None

    def _skip_step(self) -> None:
        if self.loss_scaler.is_enabled():
            # unscale_ ran: update() consumes its inf record (and lowers
            # the scale when the gradients were non-finite).
            self.loss_scaler.update(self._scale_update_param)

    def step(self, **kwargs) -> None:
        if self.sanity is None:
            return super().step(**kwargs)
        # update_params unscaled the gradients already.
        if self.clip_grad_kwargs:
            self._clip_grad()
        self.loss_scaler.step(self.optimizer, **kwargs)
        self.loss_scaler.update(self._scale_update_param)

    def rerun_autocast(self):
        from mmengine.runner.amp import autocast
        return autocast(dtype=self.cast_dtype)
