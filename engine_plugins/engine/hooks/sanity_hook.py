"""The hook that runs the sanity engine on a training run."""
import json
import math
import os.path as osp
from types import MappingProxyType
from typing import Any, List, Mapping, Optional, Sequence

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import BaseLoop

from engine_plugins.registry import HOOKS
from ..optim_wrappers.grad_sanity_optim_wrapper import GradSanityMixin
from ..sanity.annotation_audit import audit_dataset
from ..sanity.errors import (DeadLossError, NonFiniteWeightsError,
                             NoUpdateError, TrainingSanityError)
from ..sanity.events import SanityEvents, jsonable
from ..sanity.grad_report import summarize
from ..sanity.monitor import SanityMonitor
from ..sanity.optimizer_coverage import (check_master_weights,
                                         check_optimizer_coverage)
from ..sanity.preflight import check_dataset_classes, dataset_classes
from ..sanity.probe import TrainStepProbe

SKIPPED_KEY = 'sanity/skipped_steps'
NORM_PREFIX = 'sanity/grad_norm'
STEPS_FILE = 'sanity_steps.jsonl'
AUDIT_DEFAULTS = MappingProxyType(dict(max_invalid=0.01, max_images=50000))


def _schedulers(runner) -> List[Any]:
    schedulers = getattr(runner, 'param_schedulers', None) or []
    if isinstance(schedulers, Mapping):
        return [s for group in schedulers.values() for s in group]
    return list(schedulers)


@HOOKS.register_module()
class SanityHook(Hook):
    """Run the sanity engine: stop a run that cannot learn at the first
    iteration it shows, with the cause named.

    When it fires:

    * ``before_train`` (after a resume was loaded, before iteration 1):
      the model's class count against the datasets', an audit of the
      training annotations as loaded (invalid boxes and labels, format
      confusions), then it attaches the monitor: module hooks on the
      unwrapped model (they fire under DDP too) and the grad-sanity optim
      wrapper's step.
    * every iteration: labels and boxes of the batch on the CPU, before the
      preprocessor; the loss dict as returned; between backward and
      ``optimizer.step()`` (after unscaling under AMP), the loss, its terms
      and the gradient norms with one host transfer: a non-finite step is
      never applied, divergence stops the run.
    * the first ``strict_iters`` iterations, fully (any finding raises):
      batch contract, target format, input statistics (iteration 1), dead
      or stuck loss terms, gradient coverage, optimizer coverage, update
      size, declared health statistics; every ``interval`` iterations
      again, as warnings.
    * ``before_save_checkpoint`` and ``after_train``: weights are finite.

    Findings go to the log and to ``<log_dir>/sanity.jsonl``, with the
    run's contract (batch keys, box format, classes, AMP, the dtypes each
    FP32 loss region saw) and per-module gradient flow on checked
    iterations; every step appends its loss, gradient norms (total and per
    group), lr, loss scale and health statistics to
    ``<log_dir>/sanity_steps.jsonl``. ``tools/diagnose.py`` reads them. On
    checked
    iterations the console shows ``iter 3: [grad] backbone=1.2e-02
    head=3.4e-01 ok=True`` and TensorBoard gets
    ``sanity/grad_norm/<group>``; every iteration logs ``train/grad_norm``.

    Args:
        strict_iters: Iterations checked fully; findings raise. Default 3.
        interval: Then every ``interval`` iterations (findings warn); 0
            disables. Default 50.
        policy: A non-finite step after the strict window is ``'skip'``-ped
            (default: not applied, counted, reported) or ``'raise'``-s.
        max_consecutive_skips: Stop after this many skipped steps in a
            row. Default 5.
        groups: Gradient-norm groups, name -> substrings of module names.
            Default backbone / neck / head (+criterion), the rest 'other'.
        locate: On a non-finite step, re-run it once to name the first
            module with a non-finite output, or the backward op. Default
            True (costs one forward/backward, only when it fires).
        divergence: ``dict(grad_factor=1e4, loss_factor=1e2, window=5)``:
            growth of the gradient norm over its own floor, and of the loss
            over its start, that counts as divergence.
        update_iters: Iterations whose update size ``||dw||/||w||`` is
            measured (needs a copy of the trainable weights). Default 3.
        max_update_ratio: Update size, extrapolated to the base lr, that
            predicts divergence. Default 1.0.
        check_batches: Check labels and boxes of every batch. Default True.
        input_stats: Check the network input statistics. Default True.
        audit: ``dict(max_invalid=0.01, max_images=50000)``: the annotation
            audit; None disables it.
        num_classes: Overrides ``model.num_classes``.
        box_format: Overrides ``model.box_format``.
        health_ranges: ``{name: (low, high)}``: this run's ranges for
            declared health statistics (e.g. a low-SNR RIS set:
            ``{'health/ris_label_gain': (1.1, float('inf'))}``).
        max_lr_growth: Warn when a learning rate reaches this many times its
            configured base value. Default 10.

    Example:
        >>> default_hooks = dict(
        ...     sanity=dict(type='SanityHook', strict_iters=3, interval=50,
        ...                 policy='skip'))
        >>> optim_wrapper = dict(type='GradSanityOptimWrapper', ...)
    """

    priority = 'VERY_HIGH'

    def __init__(self,
                 strict_iters: int = 3,
                 interval: int = 50,
                 policy: str = 'skip',
                 max_consecutive_skips: int = 5,
                 groups: Optional[Mapping[str, Sequence[str]]] = None,
                 locate: bool = True,
                 divergence: Optional[dict] = None,
                 update_iters: int = 3,
                 max_update_ratio: float = 1.0,
                 check_batches: bool = True,
                 input_stats: bool = True,
                 audit: Optional[Mapping[str, Any]] = AUDIT_DEFAULTS,
                 num_classes: Optional[int] = None,
                 box_format: Optional[str] = None,
                 health_ranges: Optional[dict] = None,
                 max_lr_growth: float = 10.0) -> None:
        self.monitor_args = dict(
            strict_iters=strict_iters,
            interval=interval,
            policy=policy,
            max_consecutive_skips=max_consecutive_skips,
            groups=groups,
            locate=locate,
            divergence=divergence,
            update_iters=update_iters,
            max_update_ratio=max_update_ratio,
            check_batches=check_batches,
            input_stats=input_stats,
            num_classes=num_classes,
            box_format=box_format,
            health_ranges=health_ranges,
            max_lr_growth=max_lr_growth)
        # Fails on a bad policy now, at build time, not at iteration 1.
        SanityMonitor(SanityEvents(), **self.monitor_args)
        self.audit = audit
        self.monitor: Optional[SanityMonitor] = None
        self._steps = None
        self.probe: Optional[TrainStepProbe] = None
        self._registration = None

    # -- set-up -------------------------------------------------------------
    def before_train(self, runner) -> None:
        wrapper = runner.optim_wrapper
        if not isinstance(wrapper, GradSanityMixin):
            raise TypeError(
                'SanityHook checks gradients inside the optim wrapper, but '
                f"optim_wrapper.type is '{type(wrapper).__name__}'. Set "
                "optim_wrapper.type='GradSanityOptimWrapper' (or "
                "'AmpGradSanityOptimWrapper'), or disable the hook with "
                'default_hooks=dict(sanity=None)')
        ddp = runner.model if is_model_wrapper(runner.model) else None
        model = ddp.module if ddp is not None else runner.model
        events = SanityEvents(getattr(runner, 'log_dir', None), get_rank())
        monitor = SanityMonitor(events, **self.monitor_args)
        monitor.skipped_steps = runner.message_hub.get_info(SKIPPED_KEY, 0)
        dataset = runner.train_dataloader.dataset
        classes = dataset_classes(dataset)
        monitor.bind(
            model,
            wrapper.optimizer,
            ddp=ddp,
            schedulers=_schedulers(runner),
            num_classes=len(classes) if classes else None,
            max_iters=getattr(runner, 'max_iters', None))
        monitor.autocast = wrapper.rerun_autocast
        self._check_before_training(runner, monitor, wrapper, dataset)
        self.probe = TrainStepProbe(model, monitor)
        monitor.probe = self.probe
        self.probe.attach()
        wrapper.sanity = monitor
        self.monitor = monitor
        scaler = getattr(wrapper, 'loss_scaler', None)
        events.record(
            'amp',
            optim_wrapper=type(wrapper).__name__,
            dtype=str(getattr(wrapper, 'cast_dtype', None)),
            loss_scale=bool(scaler is not None and scaler.is_enabled()),
            accumulative_counts=getattr(wrapper, '_accumulative_counts', 1))
        log_dir = getattr(runner, 'log_dir', None)
        if log_dir is not None and get_rank() == 0:
            # Line-buffered: a killed run keeps every finished step.
            self._steps = open(
                osp.join(log_dir, STEPS_FILE), 'a', buffering=1,
                encoding='utf-8')
        self._registration = (
            torch.nn.modules.module.
            register_module_parameter_registration_hook(
                lambda module, name, param: monitor.params_changed()))

    def _check_before_training(self, runner, monitor: SanityMonitor,
                               wrapper, dataset: Any) -> None:
        events = monitor.events
        where = 'preflight, before training: '
        if not any(p.requires_grad for p in monitor.model.parameters()):
            events.error(
                DeadLossError,
                f'{where}every parameter of the model has '
                'requires_grad=False (everything is frozen: frozen_stages, '
                'requires_grad_(False) after a PEFT wrap, a config that '
                'freezes every module)',
                cause='frozen',
                check='frozen')
        # The optimizer as built must hold the model as built (init_weights
        # has run); hooks that change either are checked at iteration 1.
        for check in (check_optimizer_coverage, check_master_weights):
            try:
                check(monitor.model, wrapper.optimizer)
            except TrainingSanityError as exc:
                events.reraise(exc, where)
        counts = getattr(wrapper, '_accumulative_counts', 1)
        max_iters = getattr(runner, 'max_iters', None)
        if max_iters and max_iters > 1 and counts > 1 and (
                counts * 10 > max_iters):
            # mmengine steps every `counts` iterations and once more at the
            # last iteration for the remainder.
            steps = -(-max_iters // counts)
            message = (
                f'{where}optim_wrapper.accumulative_counts={counts} '
                f'accumulates that many iterations per optimizer step, and '
                f'the run has {max_iters}: ' +
                ('the optimizer steps once, at the last iteration'
                 if counts > max_iters else f'only {steps} steps in all') +
                ' (accumulative_counts counts iterations (batches), not '
                'samples)')
            if counts > max_iters:
                events.error(
                    NoUpdateError, message, cause='no_update', check='lr')
            events.warning('no_update', message, check='lr')
        num_classes = monitor.num_classes
        loaders = [('training', runner.train_dataloader)]
        val_loop = getattr(runner, '_val_loop', None)
        if isinstance(val_loop, BaseLoop):  # built by Runner.train()
            loaders.append(('validation', val_loop.dataloader))
        model_classes = getattr(monitor.model, 'num_classes', None)
        if model_classes:
            for split, loader in loaders:
                try:
                    check_dataset_classes(model_classes, loader.dataset, split)
                except TrainingSanityError as exc:
                    events.reraise(exc, where)
        if self.audit is not None and num_classes:
            monitor.boxed_fraction = audit_dataset(dataset, num_classes,
                                                   events, **self.audit)

    def record_escaped(self,
                       exc: Exception,
                       log_dir: Optional[str] = None) -> None:
        """Record an error with a cause code that a model, loss or dataset
        raised by itself (the run's entry point calls this; hooks see no
        exceptions). Before training starts (a dataset refusing its
        annotation file) the event goes to ``log_dir``'s event file."""
        if self.monitor is not None:
            self.monitor.events.record_escaped(exc)
        elif log_dir is not None:
            SanityEvents(log_dir, get_rank()).record_escaped(exc)

    # -- every iteration ----------------------------------------------------
    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch=None) -> None:
        if self.monitor is not None:
            self.monitor.start_iter(runner.iter + 1)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        monitor = self.monitor
        if monitor is None:
            return
        hub = runner.message_hub
        hub.update_info(SKIPPED_KEY, monitor.skipped_steps)
        if self._steps is not None and monitor.last_step is not None:
            self._steps.write(json.dumps(jsonable(monitor.last_step)) + '\n')
            monitor.last_step = None
        if monitor.last_total_norm is not None:
            hub.update_scalar('train/grad_norm', monitor.last_total_norm)
        if monitor.last_norms is None:
            return
        # Group norms exist only on checked iterations, so they are not
        # 'train/' scalars (the log processor would average stale values
        # into every progress line): they go to the message hub under their
        # own prefix, to the visualizer backends at this step, and to the
        # console as one line.
        scalars = {
            f'{NORM_PREFIX}/{group}': value
            for group, value in monitor.last_norms.items()
        }
        for key, value in scalars.items():
            hub.update_scalar(key, value)
        runner.visualizer.add_scalars(scalars, step=runner.iter + 1)
        runner.logger.info(f'iter {runner.iter + 1}: {monitor.last_report}')

    # -- weights ------------------------------------------------------------
    def _check_weights(self, runner, when: str) -> None:
        monitor = self.monitor
        if monitor is None:
            return
        named = [(n, p) for n, p in monitor.model.named_parameters()
                 if p.is_floating_point() and p.numel()]
        if not named:
            return
        norms = torch.stack(
            torch._foreach_norm([p.detach() for _, p in named]))
        if bool(torch.isfinite(norms).all()):
            return
        bad = [
            n for (n, _), v in zip(named, norms.tolist())
            if not math.isfinite(v)
        ]
        modules = list(dict.fromkeys('.'.join(n.split('.')[:2]) for n in bad))
        monitor.events.error(
            NonFiniteWeightsError,
            f'{when}: {len(bad)} parameters hold NaN/Inf weights, in '
            f'{summarize(modules)}: the run diverged (the last finite '
            'checkpoint is the one before this). Lower the learning rate '
            'and resume from it',
            check='weights')

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        # Checkpoints are saved after the iteration: runner.iter + 1 steps.
        self._check_weights(
            runner, f'before saving a checkpoint after iteration '
            f'{runner.iter + 1}')

    def after_train(self, runner) -> None:
        try:
            self._check_weights(runner, 'after training')
        finally:
            self._detach(runner)

    def _detach(self, runner) -> None:
        if self._steps is not None:
            self._steps.close()
            self._steps = None
        if self.probe is not None:
            self.probe.detach()
        if self._registration is not None:
            self._registration.remove()
            self._registration = None
        if isinstance(runner.optim_wrapper, GradSanityMixin):
            runner.optim_wrapper.sanity = None
