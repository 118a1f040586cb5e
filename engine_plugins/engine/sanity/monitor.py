"""The sanity monitor: every check of the engine, run at its seam.

:class:`SanityMonitor` listens to the :class:`~.probe.TrainStepProbe`
(the batch, the model's inputs and its loss dict) and is called by the
grad-sanity optim wrapper between backward and ``optimizer.step()``.

Every step costs one device-to-host transfer (``.tolist()`` of the loss,
its terms, the total and per-parameter gradient norms, and the health
statistics); mmengine already synchronises every step when it logs the
loss terms, so the pipeline was drained there anyway. With those host
values each step is guarded: a non-finite loss or gradient is never
applied, and divergence is tracked. The first ``strict_iters`` iterations
are checked fully and every finding stops the run; after that every
``interval``-th iteration is checked again and findings warn.
"""
import contextlib
import logging
import math
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence

import torch
import torch.nn as nn
from mmengine.dist import all_reduce, get_world_size
from mmengine.logging import print_log

from . import health
from .divergence import DivergenceTracker, describe_lr
from .errors import (DeadLossError, DivergenceError, HealthStatError,
                     LossRangeError, NoGradientError, NonFiniteGradError,
                     NonFiniteLossError, NoUpdateError,
                     TooManySkippedStepsError, TrainingSanityError)
from .events import SanityEvents
from .grad_report import DEFAULT_GROUPS, GradNorms, format_norms, summarize
from .input_stats import check_input_statistics
from .loss_terms import (check_loss_dict, dead_loss_terms, has_graph,
                         term_values)
from .optimizer_coverage import (check_optimizer_coverage, optimizer_params,
                                 trainable_signature)
from .preflight import (check_batch_contract, check_detection_targets,
                        check_loss_start, describe_sample)
from .update_size import (lr_scale, relative_updates, snapshot,
                          zero_update_cause)

POLICIES = ('skip', 'raise')


class SanityMonitor:
    """The checks of one training run.

    Args:
        events: Where findings go.
        strict_iters: Iterations checked fully; any finding raises.
        interval: Afterwards, check fully every ``interval`` iterations
            (findings warn); 0 disables.
        policy: What a non-finite step does after the strict window:
            ``'skip'`` (not applied, counted, reported) or ``'raise'``.
        max_consecutive_skips: Stop after this many skipped steps in a row.
        groups: Gradient-norm report groups (name -> name parts).
        locate: On a non-finite step, re-run it once to name the first
            module with a non-finite output, or the backward op.
        divergence: :class:`DivergenceTracker` arguments.
        update_iters: Iterations whose relative update size is measured.
        max_update_ratio: ``||dw|| / ||w||`` (extrapolated to the base lr)
            above which a step predicts divergence.
        check_batches: Check labels and boxes of every batch (CPU side).
        input_stats: Check the network input statistics at iteration 1.
        num_classes: Overrides the model's ``num_classes``.
        box_format: Overrides the model's ``box_format``.
    """

    def __init__(self,
                 events: SanityEvents,
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
                 num_classes: Optional[int] = None,
                 box_format: Optional[str] = None) -> None:
        if policy not in POLICIES:
            raise ValueError(
                f'sanity policy must be one of {POLICIES}, got {policy!r} '
                '(steps with NaN/Inf are never applied)')
        self.events = events
        self.strict_iters = strict_iters
        self.interval = interval
        self.policy = policy
        self.max_consecutive_skips = max_consecutive_skips
        self.groups = DEFAULT_GROUPS if groups is None else groups
        self.locate = locate
        self.divergence = DivergenceTracker(**(divergence or {}))
        self.update_iters = update_iters
        self.max_update_ratio = max_update_ratio
        self.check_batches = check_batches
        self.input_stats = input_stats
        self.num_classes = num_classes
        self.box_format = box_format
        self.iteration = 0
        self.skipped_steps = 0
        self.consecutive_skips = 0
        self.scaler_skips = 0
        self.last_norms: Optional[Dict[str, float]] = None
        self.last_report: Optional[str] = None
        self.last_total_norm: Optional[float] = None
        self.last_total_tensor: Optional[torch.Tensor] = None
        self.last_values: Dict[str, float] = {}
        self.autocast = contextlib.nullcontext
        self.schedulers: Sequence[Any] = ()
        self.model: Optional[nn.Module] = None
        self.ddp: Optional[nn.Module] = None
        self.probe = None
        self._batch: Any = None
        self._losses: Optional[Dict[str, Any]] = None
        self._health_counts: Dict[str, torch.Tensor] = {}
        self._term_history: Dict[str, List[float]] = {}
        self._signature: Optional[tuple] = None
        self._params_dirty = True
        self._model_params: List[nn.Parameter] = []
        self._before: Optional[List[torch.Tensor]] = None
        self._zero_update_pending: Optional[str] = None

    # -- set-up -------------------------------------------------------------
    def bind(self,
             model: nn.Module,
             optimizer: torch.optim.Optimizer,
             ddp: Optional[nn.Module] = None,
             schedulers: Sequence[Any] = (),
             num_classes: Optional[int] = None,
             probe: Any = None) -> None:
        """Attach to a run: the unwrapped model, its optimizer, the DDP
        wrapper (for re-runs without gradient sync) and the lr schedulers
        (named in divergence messages)."""
        self.model = model
        self.optimizer = optimizer
        self.ddp = ddp
        self.schedulers = list(schedulers)
        self.probe = probe
        self.num_classes = (
            self.num_classes or getattr(model, 'num_classes', None)
            or num_classes)
        self.box_format = self.box_format or getattr(model, 'box_format', None)

    def params_changed(self) -> None:
        """A parameter was registered somewhere: re-list the model's."""
        self._params_dirty = True

    @property
    def strict(self) -> bool:
        return self.iteration <= self.strict_iters

    @property
    def checked(self) -> bool:
        return self.strict or (self.interval > 0
                               and self.iteration % self.interval == 0)

    def start_iter(self, iteration: int) -> None:
        """Called before each training iteration (1-based)."""
        self.iteration = iteration
        self.events.iteration = iteration
        self._batch = self._losses = None
        self._health_counts = {}

    def _where(self, check: str) -> str:
        return f'{check}, iteration {self.iteration}: '

    def _run(self, check: str, fn, *args) -> Any:
        """Run a check function; record and re-raise what it raises."""
        try:
            return fn(*args)
        except TrainingSanityError as exc:
            self.events.reraise(exc, self._where(check))

    # -- probe listener -----------------------------------------------------
    def on_batch(self, data: Any) -> None:
        """Every batch, CPU side: labels and pixel boxes as the dataset
        contract states them (before any conversion)."""
        self._batch = data
        if not (self.check_batches and self.num_classes
                and isinstance(data, Mapping)):
            return
        samples = data.get('data_samples')
        if not isinstance(samples, (list, tuple)) or not samples:
            return
        gt = getattr(samples[0], 'gt_instances', None)
        labels = getattr(gt, 'labels', None) if gt is not None else None
        if not isinstance(labels, torch.Tensor) or labels.is_cuda:
            return  # on the device already: checking would sync
        self._run('data check', check_detection_targets, samples,
                  self.num_classes, 'xyxy_pixel')

    def on_inputs(self, args: tuple, kwargs: Dict[str, Any]) -> None:
        """What reaches ``forward(mode='loss')``."""
        health.start_collecting()
        if not self.strict:
            return
        model = self.model
        data = {k: v for k, v in kwargs.items() if k != 'mode'}
        required = getattr(model, 'required_inputs', None)
        if required is not None:
            unused = self._run('preflight', check_batch_contract, data,
                               required, getattr(model, 'optional_inputs', ()))
            if unused:
                self.events.warning(
                    'batch_contract',
                    f'{self._where("preflight")}batch keys {list(unused)} '
                    'are produced by the data pipeline but '
                    f'{type(model).__name__} never reads them (declare '
                    'them in optional_inputs if that is intended)',
                    check='batch_contract',
                    once='unused_keys')
        samples = data.get('data_samples')
        if self.box_format and self.num_classes and isinstance(
                samples, (list, tuple)) and samples:
            self._run('preflight', check_detection_targets, samples,
                      self.num_classes, self.box_format)
        if self.iteration == 1:
            if self.input_stats:
                raw = (
                    self._batch.get('inputs') if isinstance(
                        self._batch, Mapping) else None)
                self._run('preflight', check_input_statistics,
                          getattr(model, 'data_preprocessor', None), raw,
                          data.get('inputs'))
            self._record_contract(data)

    def on_losses(self, losses: Any) -> Optional[Dict[str, Any]]:
        """The loss dict; returns it with published health statistics."""
        published = health.stop_collecting()
        hidden = self._run('loss check', check_loss_dict, losses)
        for key in hidden:
            self.events.warning(
                'loss_dict',
                f'{self._where("loss check")}loss dict key {key!r} carries '
                "gradients but has no 'loss' in its name: mmengine logs it "
                "and does not optimise it. Rename it 'loss_...' or detach "
                'it',
                check='loss_dict',
                once=f'hidden:{key}')
        if not has_graph(losses):
            self._dead_loss(losses)
        if self.strict:
            self._check_dead_terms(losses)
        if self.iteration == 1:
            far_out = self._run(
                'preflight', check_loss_start, losses,
                getattr(self.model, 'expected_loss_ranges', None),
                getattr(self.model, 'loss_clamp_limits', None))
            for message in far_out.values():
                self.events.warning(
                    'target_units',
                    f'{self._where("preflight")}{message}',
                    check='loss_start')
        merged = dict(losses)
        merged.update({
            k: v
            for k, (v, _) in published.items() if k not in losses
        })
        self._health_counts = {k: c for k, (_, c) in published.items()}
        self._losses = merged
        return merged if published else None

    def _dead_loss(self, losses: Mapping[str, Any]) -> None:
        where = f'loss check at iteration {self.iteration}: '
        if not any(p.requires_grad for p in self.model.parameters()):
            self.events.error(
                DeadLossError,
                f'{where}the loss cannot train the model: every parameter '
                'of the model has requires_grad=False (everything is '
                'frozen: frozen_stages, requires_grad_(False) in a hook, or '
                'PEFT with no target_modules matched)',
                cause='frozen',
                check='dead_loss')
        self._check_dead_terms(losses, force=True)

    def _check_dead_terms(self,
                          losses: Mapping[str, Any],
                          force: bool = False) -> None:
        dead = dead_loss_terms(losses)
        zero = [k for k, v in dead.items() if v == 'zero']
        nonfinite = {k for k, v in dead.items() if v.startswith('is non')}
        broken = {
            k: v
            for k, v in dead.items() if k not in zero and k not in nonfinite
        }
        terms = [k for k in losses if 'loss' in k]
        where = f'loss check at iteration {self.iteration}: '
        if force or len(broken) + len(zero) == len(terms):
            parts = [f'{k} {v}' for k, v in broken.items()]
            if zero:
                parts.append(f'{", ".join(zero)} '
                             f'{"is" if len(zero) == 1 else "are"} 0.0')
            detail = '; '.join(parts) or 'the total loss is detached'
            self.events.error(
                DeadLossError,
                f'{where}the loss cannot train the model: {detail}. '
                'Backward would give no gradients (under AMP GradScaler '
                "would fail with 'No inf checks were recorded for this "
                "optimizer'). Every loss term must be computed from the "
                'model outputs; an all-zero loss usually means predictions '
                'were never matched to targets (e.g. raw head outputs not '
                'decoded or assigned).',
                check='dead_loss')
        if broken:
            self.events.error(
                DeadLossError,
                f'{where}dead loss terms: ' +
                '; '.join(f'{k} {v}' for k, v in broken.items()) +
                '. They are summed into the loss but cannot produce '
                'gradients: remove the .detach() / torch.no_grad() / '
                '.item() on their path, or log them without "loss" in the '
                'name',
                check='dead_loss')

    def _record_contract(self, data: Mapping[str, Any]) -> None:
        per_module: Dict[str, int] = {}
        for name, p in self.model.named_parameters():
            if p.requires_grad:
                top = name.split('.')[0]
                per_module[top] = per_module.get(top, 0) + p.numel()
        inputs = data.get('inputs')
        self.events.record(
            'contract',
            batch_keys=sorted(data),
            required_inputs=list(
                getattr(self.model, 'required_inputs', None) or []),
            box_format=self.box_format,
            num_classes=self.num_classes,
            input_dtype=str(getattr(inputs, 'dtype', None)),
            input_shape=list(getattr(inputs, 'shape', [])),
            trainable_params=per_module)

    # -- optim wrapper seam -------------------------------------------------
    def _refresh_params(self) -> None:
        if self._params_dirty:
            self._model_params = list(self.model.parameters())
            self._params_dirty = False
        signature = trainable_signature(self._model_params)
        if signature == self._signature:
            return
        self._run('optimizer check', check_optimizer_coverage, self.model,
                  self.optimizer)
        self._signature = signature
        names = {id(p): n for n, p in self.model.named_parameters()}
        held = optimizer_params(self.optimizer)
        self._trainable = [p for p in held if p.requires_grad]
        self._names = [names.get(id(p), '?') for p in self._trainable]

    def before_step(self, loss: torch.Tensor, scaler: Any = None) -> bool:
        """After backward (and unscaling), before ``optimizer.step()``.
        Returns whether to apply the step."""
        self._refresh_params()
        grads = [(i, p.grad) for i, p in enumerate(self._trainable)
                 if p.grad is not None]
        terms = term_values(self._losses or {})
        keys = list(terms)
        count_keys = list(self._health_counts)
        device = loss.device
        # One vector, one transfer: loss, terms, health counts, total and
        # per-parameter gradient norms.
        head = torch.stack(
            [loss.detach().float().reshape(())] +
            [terms[k].to(device) for k in keys] +
            [self._health_counts[k].to(device) for k in count_keys])
        if grads:
            norms = torch.stack(torch._foreach_norm([g for _, g in grads
                                                     ])).float()
            total = torch.linalg.vector_norm(norms)
            tail = torch.cat([total.reshape(1), norms.to(device)])
        else:
            total = torch.zeros((), device=device)
            tail = total.reshape(1)
        distributed = self.ddp is not None and get_world_size() > 1
        if distributed:
            # Gradients are all-reduced, losses are not: every rank must
            # skip when any rank's loss is non-finite, or weights diverge.
            flag = (~torch.isfinite(head)).any().float().reshape(1)
            all_reduce(flag, op='max')
            tail = torch.cat([tail, flag])
        host = torch.cat([head, tail.to(device)]).tolist()
        other_rank = distributed and host.pop() > 0
        loss_value = host[0]
        values = dict(zip(keys, host[1:1 + len(keys)]))
        offset = 1 + len(keys)
        counts = dict(zip(count_keys, host[offset:offset + len(count_keys)]))
        offset += len(count_keys)
        total_norm = host[offset]
        per_param: List[Optional[float]] = [None] * len(self._trainable)
        for (i, _), v in zip(grads, host[offset + 1:]):
            per_param[i] = v
        self.last_total_norm = total_norm
        self.last_total_tensor = total
        self.last_values = values
        norms_report = GradNorms(self._names, per_param)

        bad_terms = [
            k for k, v in values.items()
            if 'loss' in k and not math.isfinite(v)
        ]
        if bad_terms or not math.isfinite(loss_value):
            return self._nonfinite_loss(loss_value, bad_terms, values)
        if other_rank:
            self.events.info(
                'nonfinite_forward',
                f'iteration {self.iteration}: another rank\'s loss is '
                'non-finite (see its log); this step is skipped on every '
                'rank',
                check='step')
            return False
        if not math.isfinite(total_norm):
            if scaler is not None and not self._nonfinite_is_bug():
                self.scaler_skips += 1
                return True  # a loss-scale overflow: GradScaler skips
            return self._nonfinite_grads(loss_value, norms_report)
        diverging = self.divergence.update(self.iteration, loss_value,
                                           total_norm)
        if diverging:
            self.events.error(
                DivergenceError,
                f'divergence at iteration {self.iteration}: {diverging}. '
                f'{describe_lr(self.optimizer, self.schedulers)}. Lower '
                'the learning rate or lengthen the warm-up (or clip '
                'gradients with optim_wrapper.clip_grad)',
                check='divergence')
        if self.checked:
            self._check_coverage(norms_report)
            self._check_health(values, counts)
            self.last_norms = norms_report.groups(self.groups)
            self.last_report = format_norms(self.last_norms, ok=True)
        else:
            self.last_norms = self.last_report = None
        if self.strict:
            self._track_terms(values)
        self.consecutive_skips = 0
        if self.iteration <= self.update_iters:
            self._before = snapshot(self._trainable)
        return True

    def after_step(self) -> None:
        """After ``optimizer.step()``: the update size, on its iterations."""
        if self._before is None:
            return
        before, self._before = self._before, None
        updates = relative_updates(self._names, self._trainable, before,
                                   self.groups)
        ratios = {
            g: (d / w if w > 0 else 0.0)
            for g, (d, w) in updates.items()
        }
        self.events.record(
            'update',
            ratios=ratios,
            lr=[g['lr'] for g in self.optimizer.param_groups][:8])
        if all(d == 0 for d, _ in updates.values()):
            reason, certain = zero_update_cause(self.optimizer)
            if certain or self._zero_update_pending:
                self.events.error(
                    NoUpdateError,
                    f'update check at iteration {self.iteration}: the '
                    f'optimizer step changed no weight: {reason}. Nothing '
                    'learns',
                    check='update_size')
            self._zero_update_pending = reason
            return
        self._zero_update_pending = None
        scale = lr_scale(self.optimizer) or 1.0
        group, ratio = max(ratios.items(), key=lambda kv: kv[1])
        if ratio * scale > self.max_update_ratio:
            at_base = (f', {ratio * scale:.3g} at the base lr'
                       if scale > 1 else '')
            self.events.error(
                DivergenceError,
                f'update check at iteration {self.iteration}: one step '
                f'moved the {group} weights by {ratio:.3g} of their norm'
                f'{at_base} (||dw||/||w||; healthy first steps stay below '
                f'{self.max_update_ratio:g}): this predicts divergence. '
                f'{describe_lr(self.optimizer, self.schedulers)}. Lower the '
                'learning rate',
                check='update_size',
                ratios=ratios)

    # -- findings of before_step --------------------------------------------
    def _check_coverage(self, norms: GradNorms) -> None:
        with_grad, trainable, no_grad, zero_grad = norms.coverage()
        where = f'iteration {self.iteration}: '
        if with_grad == 0 and trainable > 0:
            finding = NoGradientError(
                f'{where}0/{trainable} parameters have non-zero gradients; '
                f'no grad: {summarize(no_grad + zero_grad)}. The loss does '
                'not depend on the trainable parameters.')
            if self.strict:
                self.events.error(
                    NoGradientError, str(finding), check='coverage')
            self.events.warning(
                'no_gradient',
                str(finding),
                check='coverage',
                once='no_gradient')
        elif no_grad:
            self.events.warning(
                'no_gradient',
                f'{where}{with_grad}/{trainable} parameters have non-zero '
                f'gradients; no grad: {summarize(no_grad)}' +
                (f'; zero grad: {summarize(zero_grad)}' if zero_grad else '') +
                ' (parameters outside the graph: unused modules, or a '
                'branch the forward pass skips)',
                check='coverage',
                once=f'no_grad:{no_grad}')
        elif zero_grad:
            # In the graph but nothing flowed: normal for parts without
            # targets in this batch or behind a zero-initialised layer.
            self.events.info(
                'no_gradient',
                f'{where}{with_grad}/{trainable} parameters have non-zero '
                f'gradients; zero grad: {summarize(zero_grad)} (in the '
                'graph, but nothing flowed back this step: e.g. a detection '
                'level without positives, or LoRA A while B is still zero)',
                check='coverage',
                once=f'zero_grad:{zero_grad}')

    def _check_health(self, values: Mapping[str, float],
                      counts: Mapping[str, float]) -> None:
        for key, value in values.items():
            stat = health.stat_for(key)
            if stat is None or counts.get(key, 1.0) == 0:
                continue
            problem = stat.violation(value)
            if problem is None:
                continue
            message = (f'health check, iteration {self.iteration}: {key} = '
                       f'{problem}' +
                       (f': {stat.meaning}' if stat.meaning else ''))
            data = dict(stat=key, value=value, range=list(stat.range))
            if self.strict:
                self.events.error(
                    HealthStatError,
                    message,
                    cause=stat.cause,
                    check='health',
                    **data)
            self.events.warning(
                stat.cause,
                message,
                check='health',
                once=f'health:{key}:{self.iteration // 1000}',
                **data)

    def _track_terms(self, values: Mapping[str, float]) -> None:
        """Over the strict window: terms stuck at one value (a saturated
        clamp) stop the run, and so do terms that are always exactly 0
        while a statistic declared as their target count is 0 too; other
        always-zero terms warn."""
        for key, value in values.items():
            if 'loss' in key or health.stat_for(key) is not None:
                self._term_history.setdefault(key, []).append(value)
        if self.iteration != self.strict_iters or self.strict_iters < 2:
            return
        terms = {k: v for k, v in self._term_history.items() if 'loss' in k}
        stuck, zero = [], []
        for key, history in terms.items():
            if len(history) < 2:
                continue
            if all(v == 0 for v in history):
                zero.append(key)
            elif max(history) - min(history) <= 1e-6 * abs(history[0]):
                stuck.append(f'{key} = {history[0]:.6g}')
        where = f'loss check at iteration {self.iteration}: '
        if stuck:
            self.events.error(
                LossRangeError,
                f'{where}{summarize(stuck)} on each of the first '
                f'{self.strict_iters} iterations: a term that does not '
                'change from batch to batch gives no gradient; it is '
                'stuck at a clamp or saturation. Check its targets\' '
                'units and range (e.g. DFL targets are anchor-to-edge '
                'distances in stride units)',
                check='stuck_term')
        unsupervised = [
            f'{key} (and {stat} = 0)' for key in zero
            for stat, history in self._term_history.items()
            if getattr(health.stat_for(stat), 'targets_of', None) == key
            and all(v == 0 for v in history)
        ]
        if unsupervised:
            self.events.error(
                LossRangeError,
                f'{where}{summarize(unsupervised)} = 0.0 on each of the '
                f'first {self.strict_iters} iterations: the term has no '
                'supervised targets (every label is the ignore index): '
                'check the label masking',
                cause='label_mask',
                check='zero_term')
        if zero and len(zero) < len(terms):
            self.events.warning(
                'zero_weight',
                f'{where}{summarize(zero)} = 0.0 on each of the first '
                f'{self.strict_iters} iterations while connected to the '
                'model: a loss weight of 0, or a term that never has '
                'targets. Remove a term you disabled on purpose',
                check='zero_term')

    def _nonfinite_loss(self, loss_value: float, bad_terms: List[str],
                        values: Mapping[str, float]) -> bool:
        growth = self.divergence.recent_growth()
        detail = (f'{bad_terms[0]} = {values[bad_terms[0]]}'
                  if bad_terms else f'the total loss = {loss_value}')
        message = (f'non-finite loss at iteration {self.iteration}: '
                   f'{detail}')
        if growth:
            cause = 'divergence'
            message += (f' after {growth}: the run diverged. '
                        f'{describe_lr(self.optimizer, self.schedulers)}. '
                        'Lower the learning rate or lengthen the warm-up')
        else:
            bad_input = self._nonfinite_input()
            if bad_input:
                cause = 'nonfinite_data'
                message += (f'; the input batch itself is non-finite: '
                            f'{bad_input}. Fix the sample or the transform '
                            'that produced it')
            else:
                cause = 'nonfinite_forward'
                module = self._locate_forward() if self.locate else None
                message += ('. A non-finite loss is a forward problem' +
                            (f'; first non-finite output: {module}'
                             if module else '') +
                            ': look for log of 0, division by 0 or exploding '
                            'activations on that path')
        return self._bad_step(NonFiniteLossError, cause, message)

    def _nonfinite_grads(self, loss_value: float, norms: GradNorms) -> bool:
        growth = self.divergence.recent_growth()
        bad = norms.nonfinite()
        message = (f'non-finite gradients at iteration {self.iteration} '
                   f'with a finite loss ({loss_value:.4g}); first NaN/Inf '
                   f'in: {summarize(bad)}')
        if growth:
            return self._bad_step(
                NonFiniteGradError, 'divergence',
                message + f', after {growth}: the run diverged. '
                f'{describe_lr(self.optimizer, self.schedulers)}. Lower the '
                'learning rate or lengthen the warm-up')
        op = self._locate_backward() if self.locate else None
        message += ((f'; backward op: {op}' if op else '') +
                    '. A finite loss with NaN gradients is a backward '
                    'problem: run the loss in an FP32 loss region '
                    '(FP32LossRegionHook), cast labels as well as '
                    'predictions, and guard eigh/solve against degenerate '
                    'inputs.')
        return self._bad_step(NonFiniteGradError, 'nonfinite_backward',
                              message)

    def _bad_step(self, error: type, cause: str, message: str) -> bool:
        if self.strict or self.policy == 'raise':
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

    # -- re-running one step for diagnosis ----------------------------------
    def _nonfinite_input(self) -> Optional[str]:
        batch = self._batch
        if not isinstance(batch, Mapping):
            return None
        inputs = batch.get('inputs')
        items = inputs if isinstance(inputs, (list, tuple)) else (
            list(inputs)
            if isinstance(inputs, torch.Tensor) and inputs.dim() > 0 else [])
        samples = batch.get('data_samples')
        for i, item in enumerate(items):
            if (isinstance(item, torch.Tensor) and item.is_floating_point()
                    and not bool(torch.isfinite(item).all())):
                name = (
                    describe_sample(samples[i], i)
                    if isinstance(samples, (list, tuple)) and i < len(samples)
                    else f'batch item {i}')
                return f'inputs of {name}'
        return None

    @contextlib.contextmanager
    def _rerun(self):
        """Re-run context: hooks paused, parameters, gradients, buffers and
        RNG restored afterwards."""
        model = self.model
        params = list(model.parameters())
        grads = [p.grad for p in params]
        buffers = {k: v.clone() for k, v in model.named_buffers()}
        rng = torch.get_rng_state()
        cuda_rng = (
            torch.cuda.get_rng_state_all()
            if torch.cuda.is_available() else None)
        pause = (
            self.probe.paused()
            if self.probe is not None else contextlib.nullcontext())
        try:
            with pause, self._autocast():
                yield
        finally:
            for p, g in zip(params, grads):
                p.grad = g
            for k, v in model.named_buffers():
                v.copy_(buffers[k])
            torch.set_rng_state(rng)
            if cuda_rng is not None:
                torch.cuda.set_rng_state_all(cuda_rng)

    def _autocast(self):
        return self.autocast()

    def _forward_losses(self):
        model = self.model
        data = model.data_preprocessor(self._batch, True)
        if isinstance(data, dict):
            return model(**data, mode='loss')
        return model(*data, mode='loss')

    def _locate_forward(self) -> Optional[str]:
        """The first module whose output is non-finite in a re-run."""
        if self.model is None or self._batch is None:
            return None
        found: List[str] = []

        def make(name):

            def hook(module, args, output):
                if found:
                    return
                flat = output if isinstance(output,
                                            (list, tuple)) else [output]
                if any(
                        isinstance(t, torch.Tensor) and t.is_floating_point()
                        and not bool(torch.isfinite(t).all()) for t in flat):
                    inputs_ok = all(
                        bool(torch.isfinite(a).all()) for a in args if
                        isinstance(a, torch.Tensor) and a.is_floating_point())
                    found.append(f'{name} ({type(module).__name__}' +
                                 (', finite inputs)' if inputs_ok else ')'))

            return hook

        handles = [
            m.register_forward_hook(make(n))
            for n, m in self.model.named_modules() if n
        ]
        try:
            with self._rerun(), torch.no_grad():
                self._forward_losses()
        except Exception as exc:  # diagnosis must not mask the finding
            print_log(
                f'sanity: re-run to locate the non-finite output failed: '
                f'{exc!r}',
                logger='current',
                level=logging.DEBUG)
        finally:
            for h in handles:
                h.remove()
        return found[0] if found else None

    def _rerun_backward(self, anomaly: bool) -> Optional[str]:
        """Re-run forward/backward of the recorded batch without a loss
        scale; the anomaly message, ``'non-finite'``, or ``''``."""
        if self.model is None or self._batch is None:
            return None
        message = ''
        sync = (
            self.ddp.no_sync()
            if self.ddp is not None else contextlib.nullcontext())
        try:
            with self._rerun(), sync:
                for p in self.model.parameters():
                    p.grad = None
                ctx = (
                    torch.autograd.detect_anomaly(check_nan=True)
                    if anomaly else contextlib.nullcontext())
                with ctx:
                    losses = self._forward_losses()
                    total, _ = self.model.parse_losses(losses)
                    total.backward()
                if any(
                        p.grad is not None
                        and not bool(torch.isfinite(p.grad).all())
                        for p in self.model.parameters()):
                    message = 'non-finite'
        except RuntimeError as exc:
            message = str(exc)
        return message

    def _locate_backward(self) -> Optional[str]:
        message = self._rerun_backward(anomaly=True)
        if not message:
            return None
        match = re.search(r"Function '(\w+)' returned nan", message)
        return match.group(1) if match else message.splitlines()[0][:200]

    def _nonfinite_is_bug(self) -> bool:
        """Under a dynamic loss scale, non-finite gradients are first
        assumed to be an overflow: re-run the step unscaled; still
        non-finite means a bug."""
        message = self._rerun_backward(anomaly=False)
        if message is None:
            self.events.info(
                'nonfinite_backward',
                'non-finite gradients under a dynamic loss scale and no '
                'recorded batch to re-run: assuming a scale overflow',
                check='step',
                once='no_rerun')
            return False
        return message != ''
