"""The sanity monitor: every check of the engine, run at its seam.

:class:`SanityMonitor` listens to the :class:`~.probe.TrainStepProbe`
(the batch, the model's inputs and its loss dict) and is called by the
grad-sanity optim wrapper between backward and ``optimizer.step()``.

Every step costs one device-to-host transfer (``.tolist()`` of the loss,
its terms, the health statistics, the total and per-parameter gradient
norms and the per-parameter weight norms); mmengine already synchronises
every step when it logs the loss terms, so the pipeline was drained there
anyway. With those host values each step is guarded: a non-finite loss or
gradient is never applied; divergence, a learning rate at 0 or far above
its base, vanished gradients and weights restored to their initial values
are caught when they happen. The first ``strict_iters`` iterations are
checked fully and every finding stops the run; after that every
``interval``-th iteration is checked again and findings warn.
"""
import contextlib
import math
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
from mmengine.dist import all_reduce, get_world_size

from ..fp32_region import REGION_INPUTS
from . import health
from .divergence import describe_lr
from .errors import (BatchContractError, DeadLossError, DivergenceError,
                     HealthStatError, LossDictError, LossRangeError,
                     NoGradientError, NoUpdateError, TrainingSanityError)
from .events import SanityEvents
from .grad_report import (DEFAULT_GROUPS, GradNorms, coverage_finding,
                          format_norms, group_of, module_norms, summarize)
from .input_stats import check_input_statistics
from .loss_terms import (check_loss_dict, dead_loss_findings, has_graph,
                         term_values)
from .optimizer_coverage import (check_master_weights,
                                 check_optimizer_coverage, optimizer_params,
                                 trainable_signature)
from .preflight import (check_batch_contract, check_detection_targets,
                        check_loss_start, check_value_ranges)
from .rerun import StepRerun, input_scale
from .run_watch import RunWatch
from .step_guard import StepGuard
from .target_contracts import (DatasetContract, TargetCount, dataset_contracts,
                               target_contract)
from .term_history import TermHistory
from .update_size import relative_updates, snapshot, update_finding

_ERRORS = dict(
    no_update=NoUpdateError, frozen=NoUpdateError, divergence=DivergenceError)


def _leading_entries(param: torch.Tensor, count: int = 16) -> torch.Tensor:
    """A view of the first ``count`` entries of ``param``'s first row
    (a view whatever the memory layout, so it follows in-place updates)."""
    value = param.detach()
    if value.dim() == 0 or value.numel() == 0:
        return value.reshape(-1)
    return value[(0, ) * (value.dim() - 1)][:count]


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
        max_lr_growth: Warn when a learning rate reaches this many times
            its configured base value.
        check_batches: Check labels, boxes and declared value ranges of
            every batch (CPU side).
        input_stats: Check the network input statistics at iteration 1.
        num_classes: Overrides the model's ``num_classes``.
        box_format: Overrides the model's ``box_format``.
        health_ranges: ``{name: (low, high)}`` overriding declared health
            statistic ranges for this run.
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
                 max_lr_growth: float = 10.0,
                 check_batches: bool = True,
                 input_stats: bool = True,
                 num_classes: Optional[int] = None,
                 box_format: Optional[str] = None,
                 health_ranges: Optional[Mapping[str, Sequence[float]]] = None
                 ) -> None:
        self.events = events
        self.guard = StepGuard(events, policy, max_consecutive_skips, locate)
        self.watch = RunWatch(events, divergence, max_lr_growth, update_iters)
        self.strict_iters = strict_iters
        self.interval = interval
        self.groups = DEFAULT_GROUPS if groups is None else groups
        self.update_iters = update_iters
        self.max_update_ratio = max_update_ratio
        self.check_batches = check_batches
        self.input_stats = input_stats
        self.num_classes = num_classes
        self.box_format = box_format
        unknown = set(health_ranges or {}) - set(health.HEALTH_STATS)
        if unknown:
            raise KeyError(
                f'health_ranges: no health statistic is declared as '
                f'{sorted(unknown)}; declared: {sorted(health.HEALTH_STATS)}')
        self.health_ranges = {
            k: tuple(v)
            for k, v in (health_ranges or {}).items()
        }
        self.iteration = 0
        self.max_iters: Optional[int] = None
        self.scaler_skips = 0
        self.last_norms: Optional[Dict[str, float]] = None
        self.last_report: Optional[str] = None
        self.last_total_norm: Optional[float] = None
        self.last_total_tensor: Optional[torch.Tensor] = None
        self.last_values: Dict[str, float] = {}
        # What SanityHook writes to sanity_steps.jsonl after each step.
        self.last_step: Optional[Dict[str, Any]] = None
        self.autocast = contextlib.nullcontext
        self.schedulers: Sequence[Any] = ()
        self.model: Optional[nn.Module] = None
        self.ddp: Optional[nn.Module] = None
        self.probe = None
        self.terms = TermHistory()
        self._batch: Any = None
        self._losses: Optional[Dict[str, Any]] = None
        self._health_counts: Dict[str, torch.Tensor] = {}
        self._gt_boxes = 0
        # Fraction of training images with a box as annotated (the
        # annotation audit sets it): a batch without any box after the
        # pipeline is then improbable.
        self.boxed_fraction: Optional[float] = None
        self._batch_gts: Optional[int] = None
        self._signature: Optional[tuple] = None
        self._params_dirty = True
        self._model_params: List[nn.Parameter] = []
        self._fingerprints: List[torch.Tensor] = []
        self._before: Optional[List[torch.Tensor]] = None
        self._zero_update = False

    # -- set-up -------------------------------------------------------------
    def bind(self,
             model: nn.Module,
             optimizer: torch.optim.Optimizer,
             ddp: Optional[nn.Module] = None,
             schedulers: Sequence[Any] = (),
             num_classes: Optional[int] = None,
             probe: Any = None,
             max_iters: Optional[int] = None) -> None:
        """Attach to a run: the unwrapped model, its optimizer, the DDP
        wrapper (for re-runs without gradient sync), the lr schedulers
        (named in messages) and the run's length."""
        self.model = model
        self.optimizer = optimizer
        self.ddp = ddp
        self.schedulers = list(schedulers)
        self.probe = probe
        self.max_iters = max_iters
        self.num_classes = (
            self.num_classes or getattr(model, 'num_classes', None)
            or num_classes)
        self.box_format = self.box_format or getattr(model, 'box_format', None)

    @property
    def skipped_steps(self) -> int:
        return self.guard.skipped_steps

    @skipped_steps.setter
    def skipped_steps(self, value: int) -> None:
        self.guard.skipped_steps = value

    @property
    def consecutive_skips(self) -> int:
        return self.guard.consecutive_skips

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
        self._batch = self._losses = self._batch_gts = None
        self._health_counts = {}

    def _where(self, check: str) -> str:
        return f'{check}, iteration {self.iteration}: '

    def _run(self, check: str, fn, *args) -> Any:
        """Run a check function; record and re-raise what it raises."""
        try:
            return fn(*args)
        except TrainingSanityError as exc:
            self.events.reraise(exc, self._where(check))

    def _rerun(self) -> StepRerun:
        pause = (
            self.probe.paused
            if self.probe is not None else contextlib.nullcontext)
        return StepRerun(self.model, self.ddp, self.autocast, pause)

    # -- probe listener -----------------------------------------------------
    def on_batch(self, data: Any) -> None:
        """Every batch, CPU side: declared value ranges, and labels and
        pixel boxes as the dataset contract states them (before any
        conversion)."""
        self._batch = data
        if not (self.check_batches and isinstance(data, Mapping)):
            return
        ranges = getattr(self.model, 'value_ranges', None)
        if ranges:
            self._run('data check', check_value_ranges, data, ranges)
        samples = data.get('data_samples')
        if not (self.num_classes and isinstance(samples, (list, tuple))
                and samples):
            return
        for contract in dataset_contracts():
            counted = contract.count(samples)
            if counted is not None:
                self._account_targets(contract, samples, counted)
                return

    def _account_targets(self, contract: DatasetContract,
                         samples: Sequence[Any], counted: TargetCount) -> None:
        """The dataset contract's check, then (strict) batches and first
        batches without any target."""
        self._run('data check', target_contract(contract.name), samples,
                  self.num_classes)
        self._batch_gts = counted.targets
        if not self.strict:
            return
        if not counted.targets:
            self._check_targets_lost(contract, samples, counted)
        self._gt_boxes += counted.targets
        if self.iteration == self.strict_iters and not self._gt_boxes:
            self.events.error(
                BatchContractError,
                f'data check, iteration {self.iteration}: ' +
                contract.none_in_first.format(batches=self.strict_iters),
                cause='label_mask',
                check='batch')

    def _check_targets_lost(self, contract: DatasetContract,
                            samples: Sequence[Any],
                            counted: TargetCount) -> None:
        """A batch without a target is an error now when its targets were
        all marked ignored, or when the annotations make a batch of three or
        more samples without targets improbable (below 1e-3 for samples
        drawn independently)."""
        where = f'data check, iteration {self.iteration}: '
        if counted.ignored:
            message = contract.all_ignored.format(ignored=counted.ignored)
        elif (self.boxed_fraction is not None and len(samples) >= 3
              and (1 - self.boxed_fraction)**len(samples) < 1e-3):
            message = contract.none_in_batch.format(
                images=len(samples), fraction=self.boxed_fraction)
        else:
            return
        self.events.error(
            BatchContractError,
            where + message,
            cause='label_mask',
            check='batch')

    def on_inputs(self, args: tuple, kwargs: Dict[str, Any]) -> None:
        """What reaches ``forward(mode='loss')``."""
        health.start_collecting(checked=self.checked)
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
        declared = getattr(self.model, 'loss_keys', None)
        if self.strict and declared:
            missing = [k for k in declared if k not in losses]
            if missing:
                self.events.error(
                    LossDictError,
                    f'loss check at iteration {self.iteration}: the loss '
                    f'dict lacks the terms {type(self.model).__name__} '
                    f'declares: {summarize(missing)} (it holds '
                    f'{summarize(sorted(losses))}): a term was renamed, '
                    'overwritten or dropped on its way out of the loss',
                    check='loss_dict')
        dead = not has_graph(losses)
        if dead and not any(p.requires_grad for p in self.model.parameters()):
            self.events.error(
                DeadLossError,
                f'loss check at iteration {self.iteration}: the loss cannot '
                'train the model: every parameter of the model has '
                'requires_grad=False (everything is frozen: frozen_stages, '
                'requires_grad_(False) in a hook, or PEFT with no '
                'target_modules matched)',
                cause='frozen',
                check='dead_loss')
        if dead or self.strict:
            for message, cause in dead_loss_findings(losses, published,
                                                     dead):
                self.events.error(
                    DeadLossError,
                    f'loss check at iteration {self.iteration}: {message}',
                    cause=cause,
                    check='dead_loss')
        if self.iteration == 1:
            self.events.record('regions', regions=dict(REGION_INPUTS))
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
        """At the first step and whenever the trainable set changes: the
        optimizer holds exactly the model's trainable parameters, and they
        are not half precision."""
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
        groups = list(self.groups) + ['other']
        self._group_names = groups
        self._group_index = np.array(
            [groups.index(group_of(n, self.groups)) for n in self._names],
            dtype=np.int64)
        self._group_used = np.bincount(
            self._group_index, minlength=len(groups)) > 0
        self.watch.reset_weights()
        self._fingerprints = [_leading_entries(p) for p in self._trainable]
        self._run('optimizer check', check_master_weights, self.model,
                  self.optimizer)

    def _fetch(self, loss: torch.Tensor, scaler: Any = None) -> Dict[str, Any]:
        """The step's values, with one device-to-host transfer: loss,
        terms, health counts, total and per-parameter gradient norms,
        per-parameter weight norms on checked iterations (and, under DDP,
        whether any rank's loss is non-finite)."""
        grads = [(i, p.grad) for i, p in enumerate(self._trainable)
                 if p.grad is not None]
        terms = term_values(self._losses or {})
        keys, count_keys = list(terms), list(self._health_counts)
        device = loss.device
        head = torch.stack(
            [loss.detach().float().reshape(())] +
            [terms[k].to(device) for k in keys] +
            [self._health_counts[k].to(device) for k in count_keys])
        pieces = [head]
        if grads:
            norms = torch.stack(torch._foreach_norm([g for _, g in grads
                                                     ])).float().to(device)
            total = torch.linalg.vector_norm(norms)
            pieces += [total.reshape(1), norms]
        else:
            total = torch.zeros((), device=device)
            pieces.append(total.reshape(1))
        scale = getattr(scaler, '_scale', None)
        if isinstance(scale, torch.Tensor):
            pieces.append(scale.detach().float().reshape(1).to(device))
        # Weight norms (gradient flow records) only on checked iterations:
        # a pass over every weight on every step would cost as much as the
        # gradient norms. The restored-weights check reads a fingerprint of
        # every tensor on every step instead: the norm of a few leading
        # entries (views, so always current).
        with_weights = bool(self._trainable) and self.checked
        if with_weights:
            pieces.append(
                torch.stack(
                    torch._foreach_norm([p.detach() for p in self._trainable
                                         ])).float().to(device))
        if self._fingerprints:
            pieces.append(
                torch.stack(torch._foreach_norm(
                    self._fingerprints)).float().to(device))
        distributed = self.ddp is not None and get_world_size() > 1
        if distributed:
            # Gradients are all-reduced, losses are not: every rank must
            # skip when any rank's loss is non-finite, or weights diverge.
            flag = (~torch.isfinite(head)).any().float().reshape(1)
            all_reduce(flag, op='max')
            pieces.append(flag)
        host = torch.cat(pieces).tolist()
        other_rank = distributed and host.pop() > 0
        fingerprint = host[len(host) - len(self._fingerprints):]
        host = host[:len(host) - len(self._fingerprints)]
        weights = None
        if with_weights:
            weights = host[len(host) - len(self._trainable):]
            host = host[:len(host) - len(self._trainable)]
        scale = host.pop() if isinstance(scale, torch.Tensor) else None
        values = dict(zip(keys, host[1:1 + len(keys)]))
        at = 1 + len(keys)
        counts = dict(zip(count_keys, host[at:at + len(count_keys)]))
        at += len(count_keys)
        per_param: List[Optional[float]] = [None] * len(self._trainable)
        for (i, _), v in zip(grads, host[at + 1:]):
            per_param[i] = v
        self.last_total_tensor = total
        return dict(
            loss=host[0],
            values=values,
            counts=counts,
            total=host[at],
            norms=GradNorms(self._names, per_param),
            weights=weights,
            fingerprint=fingerprint,
            scale=scale,
            other_rank=other_rank)

    def before_step(self, loss: torch.Tensor, scaler: Any = None) -> bool:
        """After backward (and unscaling), before ``optimizer.step()``.
        Returns whether to apply the step."""
        self._refresh_params()
        step = self._fetch(loss, scaler)
        values, total = step['values'], step['total']
        self.last_total_norm = total
        self.last_values = values
        self.last_step = self._step_record(step)
        applied = self._guard_step(step, scaler)
        self.last_step['applied'] = applied
        return applied

    def _step_record(self, step: Dict[str, Any]) -> Dict[str, Any]:
        """The per-step record: loss, gradient norm (total and per group),
        learning rate, loss scale and health statistics."""
        norms = np.array([v if v is not None else 0.0
                          for v in step['norms'].norms], dtype=np.float64)
        if not math.isfinite(step['total']):
            norms = np.nan_to_num(norms, nan=np.inf)
        squares = np.bincount(
            self._group_index,
            weights=norms**2,
            minlength=len(self._group_names))
        used = self._group_used
        return dict(
            iter=self.iteration,
            loss=step['loss'],
            grad_norm=step['total'],
            groups={
                g: float(np.sqrt(s))
                for g, s, u in zip(self._group_names, squares, used) if u
            },
            lr=max((g['lr'] for g in self.optimizer.param_groups),
                   default=None),
            scale=step['scale'],
            health={
                k: v
                for k, v in step['values'].items()
                if health.stat_for(k) is not None
            })

    def _evidence(self, step: Dict[str, Any]) -> Dict[str, Any]:
        """What a non-finite step's report reads (failure paths only)."""
        return dict(
            iteration=self.iteration,
            strict=self.strict,
            loss=step['loss'],
            growth=self.watch.divergence.recent_growth(),
            lr=describe_lr(self.optimizer, self.schedulers),
            batch=self._batch,
            rerun=self._rerun)

    def _guard_step(self, step: Dict[str, Any], scaler: Any) -> bool:
        """The decisions of :meth:`before_step`."""
        values, total = step['values'], step['total']
        bad_terms = [
            k for k, v in values.items()
            if 'loss' in k and not math.isfinite(v)
        ]
        if bad_terms or not math.isfinite(step['loss']):
            return self.guard.nonfinite_loss(
                bad_terms=bad_terms, values=values, **self._evidence(step))
        if step['other_rank']:
            self.events.info(
                'nonfinite_forward',
                f'iteration {self.iteration}: another rank\'s loss is '
                'non-finite (see its log); this step is skipped on every '
                'rank',
                check='step')
            return False
        if not math.isfinite(total):
            if scaler is not None and not self._nonfinite_is_bug():
                self.scaler_skips += 1
                return True  # a loss-scale overflow: GradScaler skips
            return self.guard.nonfinite_grads(
                norms=step['norms'], **self._evidence(step))
        self.watch.step(self.iteration, step['loss'], total,
                        step['fingerprint'],
                        self.optimizer, self.schedulers, self.max_iters,
                        self._batch)
        if self.checked:
            self._check_coverage(step['norms'])
            self._check_health(values, step['counts'])
            self.last_norms = step['norms'].groups(self.groups)
            self.last_report = format_norms(self.last_norms, ok=True)
            self.events.record(
                'grad_flow',
                grads=module_norms(self._names, step['norms'].norms),
                weights=module_norms(self._names, step['weights']))
        else:
            self.last_norms = self.last_report = None
        if self.strict:
            for kind, cause, message, once in self.terms.findings(
                    values, self.iteration, self.strict_iters):
                if kind == 'error':
                    self.events.error(
                        LossRangeError,
                        message,
                        cause=cause,
                        check='stuck_term')
                self.events.warning(
                    cause, message, check='zero_term', once=once)
        self.guard.applied()
        if self.iteration <= self.update_iters:
            self._before = snapshot(self._trainable)
        return True

    def after_step(self) -> None:
        """After ``optimizer.step()``: the update size, on its iterations."""
        if self._before is None:
            return
        before, self._before = self._before, None
        updates, cosine = relative_updates(self._names, self._trainable,
                                           before, self.groups)
        self.events.record(
            'update',
            ratios={
                g: (d / w if w > 0 else 0.0)
                for g, (d, w) in updates.items()
            },
            lr=[g['lr'] for g in self.optimizer.param_groups][:8],
            cosine=cosine)
        if any(d > 0 for d, _ in updates.values()):
            self.watch.moved()
        found = update_finding(updates, self.optimizer,
                               self.max_update_ratio, self._zero_update,
                               self.schedulers, cosine)
        self._zero_update = bool(found and found[0] == 'no_update')
        if not found or not found[2]:
            return
        cause, message, _ = found
        if cause == 'divergence':
            scale = input_scale(self._batch)
            if scale:
                cause, message = 'input_normalization', (
                    f'{message}. Likely cause: {scale}')
        self.events.error(
            _ERRORS.get(cause, DivergenceError),
            f'update check at iteration {self.iteration}: {message}',
            cause=cause,
            check='update_size')

    # -- findings of before_step --------------------------------------------
    def _check_coverage(self, norms: GradNorms) -> None:
        found = coverage_finding(norms, f'iteration {self.iteration}: ',
                                 self._batch_gts != 0)
        if found is None:
            return
        level, cause, message, once = found
        if level == 'error' and self.strict:
            self.events.error(
                DeadLossError if cause == 'dead_loss' else NoGradientError,
                message,
                check='coverage')
        report = self.events.info if level == 'info' else self.events.warning
        report(cause, message, check='coverage', once=once)

    def _check_health(self, values: Mapping[str, float],
                      counts: Mapping[str, float]) -> None:
        for key, stat, value, bounds, sentence in health.health_findings(
                values, counts, self.health_ranges):
            message = (f'health check, iteration {self.iteration}: {key} = '
                       f'{sentence}')
            data = dict(stat=key, value=value, range=list(bounds))
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

    def _nonfinite_is_bug(self) -> bool:
        """Under a dynamic loss scale, non-finite gradients are first
        assumed to be an overflow: re-run the step unscaled; still
        non-finite means a bug."""
        if self._batch is None:
            self.events.info(
                'nonfinite_backward',
                'non-finite gradients under a dynamic loss scale and no '
                'recorded batch to re-run: assuming a scale overflow',
                check='step',
                once='no_rerun')
            return False
        return self._rerun().backward(self._batch, anomaly=False) != ''
