"""From a run's files to a diagnosis: the ranked causes, the timeline of
anomalies, and the run's contract.

Causes come first from the sanity engine's own findings (the error that
stopped the run ranks first; warnings follow by their first iteration),
then from what the per-step records show without a finding: a
non-finite loss, a divergence, a loss that never fell. Each cause carries
its evidence (which statistic or message, at which iteration, against
which range), where to look, and the fix, in the words of
:data:`~engine_plugins.engine.sanity.causes.CAUSES`.
"""
import math
import statistics
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from engine_plugins.engine.sanity.causes import describe
from engine_plugins.engine.sanity.health import stat_for
from .run_files import RunFiles

_ORDER = dict(error=0, warning=1, anomaly=2)


@dataclass
class RankedCause:
    """One likely cause.

    Attributes:
        cause: Cause code.
        severity: ``'error'`` (stopped the run), ``'warning'`` or
            ``'anomaly'`` (seen in the records, not reported by a check).
        first_iter: First iteration it showed.
        evidence: Sentences: the messages and statistics behind it.
        count: How many findings it groups.
    """
    cause: str
    severity: str
    first_iter: Optional[int]
    evidence: List[str] = field(default_factory=list)
    count: int = 1

    @property
    def title(self) -> str:
        return describe(self.cause).title

    @property
    def fix(self) -> str:
        return describe(self.cause).fix

    @property
    def where(self) -> str:
        return describe(self.cause).where


@dataclass
class Diagnosis:
    """Verdict, timeline and contract of one run."""
    causes: List[RankedCause]
    timeline: List[Tuple[int, str]]
    contract: Dict[str, Any]
    summary: Dict[str, Any]
    missing: List[str]
    log_tail: List[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.causes

    @property
    def verdict(self) -> str:
        if self.healthy:
            return 'healthy'
        top = self.causes[0]
        return f'{top.title} [{top.cause}]'


def _shorten(text: str, limit: int = 400) -> str:
    return text if len(text) <= limit else text[:limit - 1] + '…'


def _findings(files: RunFiles) -> List[RankedCause]:
    grouped: Dict[Tuple[str, str], RankedCause] = {}
    for event in files.events:
        kind = event.get('kind')
        if kind not in ('error', 'warning'):
            continue
        key = (kind, event.get('cause', 'unknown'))
        evidence = _shorten(event.get('message', ''))
        data = event.get('data') or {}
        if 'stat' in data:
            evidence += (f" [statistic {data['stat']} = {data['value']:.4g}"
                         f" against [{data['range'][0]}, "
                         f"{data['range'][1]}]]")
        found = grouped.get(key)
        if found is None:
            grouped[key] = RankedCause(key[1], kind, event.get('iter'),
                                       [evidence])
        else:
            found.count += 1
            if len(found.evidence) < 3 and evidence not in found.evidence:
                found.evidence.append(evidence)
    causes = sorted(
        grouped.values(),
        key=lambda c: (_ORDER[c.severity], c.first_iter
                       if c.first_iter is not None else 10**12))
    # A cause reported as an error and as warnings is one cause.
    seen, unique = set(), []
    for cause in causes:
        if cause.cause not in seen:
            seen.add(cause.cause)
            unique.append(cause)
    return unique


def _series(files: RunFiles, key: str) -> List[Tuple[int, float]]:
    """``(iteration, value)`` from the per-step records, else from the
    logged training scalars."""
    if files.steps:
        return [(s['iter'], float(s[key])) for s in files.steps
                if s.get(key) is not None]
    logged = [r for r in files.scalars if 'loss' in r and key in r]
    return [(int(r.get('iter', r.get('step', i))), float(r[key]))
            for i, r in enumerate(logged)]


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def warm_up_end(config_text: str) -> Optional[str]:
    """``'iteration 1000 (LinearLR)'``: where the config's warm-up ends."""
    if not config_text:
        return None
    try:
        from mmengine.config import Config
        cfg = Config.fromstring(config_text, '.py')
    except Exception:  # a dump that does not parse: no warm-up named
        return None
    schedulers = cfg.get('param_scheduler') or []
    if isinstance(schedulers, dict):
        schedulers = [schedulers]
    for s in schedulers:
        if s.get('start_factor', 1.0) < 1.0 and 'end' in s:
            unit = 'epoch' if s.get('by_epoch', True) else 'iteration'
            return f"{unit} {s['end']} ({s.get('type')})"
    return None


def _divergence_onset(files: RunFiles) -> Optional[Tuple[int, str]]:
    """The first step where the gradient norm stays (median of 3 steps)
    at 100x the run's floor (the lowest 5-step median before it), or turns
    non-finite, with the group that grew most."""
    steps = [s for s in files.steps if s.get('grad_norm') is not None]
    if len(steps) < 10:
        return None
    norms = [_as_float(s['grad_norm']) for s in steps]
    floor, floor_at = math.inf, None
    for i in range(4, len(steps)):
        window = [n for n in norms[i - 4:i + 1] if math.isfinite(n)]
        if len(window) == 5:
            level = statistics.median(window)
            if 0 < level < floor:
                floor, floor_at = level, i
        recent = statistics.median(norms[i - 2:i + 1])
        if floor_at is not None and (not math.isfinite(norms[i])
                                     or recent >= 100 * floor):
            before = steps[floor_at].get('groups') or {}
            after = steps[i].get('groups') or {}
            ratios = {
                g: _as_float(after.get(g)) / v
                for g, v in before.items() if v and g in after
            }
            group = max(ratios, key=lambda g: ratios[g]) if ratios else None
            grown = (f'gradient norm of {group} grew {ratios[group]:.3g}x '
                     if group and math.isfinite(ratios[group]) else
                     'gradient norm grew past 100x ')
            return (steps[i]['iter'],
                    f'{grown}from {floor:.3g} (iteration '
                    f"{steps[floor_at]['iter']}) to {norms[i]:.3g}")
    return None


def _anomalies(files: RunFiles, causes: List[RankedCause],
               timeline: List[Tuple[int, str]]) -> None:
    """What the records show that no check reported."""
    reported = {c.cause for c in causes}
    losses = _series(files, 'loss')
    bad = [(i, v) for i, v in losses if not math.isfinite(v)]
    if bad:
        timeline.append((bad[0][0], f'first non-finite loss ({bad[0][1]})'))
        if not reported & {'nonfinite_forward', 'nonfinite_backward',
                           'nonfinite_data', 'divergence'}:
            causes.append(
                RankedCause('nonfinite_forward', 'anomaly', bad[0][0], [
                    f'the loss is {bad[0][1]} at iteration {bad[0][0]} '
                    f'({len(bad)} non-finite steps) and no check reported '
                    'it (was SanityHook off?)'
                ]))
    skipped = [s['iter'] for s in files.steps if s.get('applied') is False]
    if skipped:
        timeline.append((skipped[0], f'first skipped step ({len(skipped)} '
                         'in all)'))
    onset = _divergence_onset(files)
    if onset:
        warm = warm_up_end(files.config_text)
        text = onset[1] + (f'; lr warm-up ends at {warm}' if warm else '')
        timeline.append((onset[0], f'divergence onset: {text}'))
        if 'divergence' not in reported:
            causes.append(
                RankedCause('divergence', 'anomaly', onset[0], [text]))
    finite = [(i, v) for i, v in losses if math.isfinite(v)]
    if len(finite) >= 200 and not causes:
        tenth = len(finite) // 10
        start = statistics.mean(v for _, v in finite[:tenth])
        end = statistics.mean(v for _, v in finite[-tenth:])
        if start > 0 and end / start > 0.98:
            timeline.append((finite[-tenth][0], 'loss plateau'))
            causes.append(
                RankedCause('unknown', 'anomaly', finite[0][0], [
                    f'the loss has not fallen: {start:.4g} over the first '
                    f'10% of {len(finite)} steps, {end:.4g} over the last '
                    '10%'
                ]))


def _first_out_of_range(files: RunFiles) -> Dict[str, Tuple[int, float]]:
    found: Dict[str, Tuple[int, float]] = {}
    for step in files.steps:
        for key, value in (step.get('health') or {}).items():
            stat = stat_for(key)
            if key in found or stat is None:
                continue
            if stat.violation(_as_float(value)) is not None:
                found[key] = (step['iter'], _as_float(value))
    return found


def _contract(files: RunFiles) -> Dict[str, Any]:
    contract: Dict[str, Any] = {}
    for kind in ('contract', 'amp', 'regions'):
        records = files.records(kind)
        if records:
            contract.update({
                k: v
                for k, v in records[0].items() if k not in ('kind', 'iter')
            })
    scales = [s['scale'] for s in files.steps if s.get('scale') is not None]
    if scales:
        contract['loss_scale'] = dict(
            first=scales[0],
            last=scales[-1],
            min=min(scales),
            changes=sum(a != b for a, b in zip(scales, scales[1:])))
    return contract


def diagnose(files: RunFiles) -> Diagnosis:
    """The diagnosis of one run."""
    causes = _findings(files)
    timeline: List[Tuple[int, str]] = []
    for cause in causes:
        if cause.first_iter is not None:
            timeline.append((cause.first_iter,
                             f'first {cause.severity}: {cause.title} '
                             f'[{cause.cause}]'))
    for key, (it, value) in _first_out_of_range(files).items():
        timeline.append((it, f'{key} = {value:.4g} out of its range'))
    _anomalies(files, causes, timeline)
    iters = [s['iter'] for s in files.steps] or [
        int(r['iter']) for r in files.scalars if 'iter' in r
    ]
    errors = files.records('error')
    summary = dict(
        iterations=max(iters) if iters else 0,
        stopped_by=errors[0]['message'][:300] if errors else None,
        skipped_steps=sum(s.get('applied') is False for s in files.steps),
        checkpoints=len(files.checkpoints))
    timeline.sort(key=lambda item: item[0])
    tail = [line for line in files.log_text.splitlines() if line.strip()]
    return Diagnosis(causes, timeline, _contract(files), summary,
                     list(files.missing), tail[-12:])
