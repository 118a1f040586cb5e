"""Health statistics: cheap scalars a loss path publishes, each with the
range it must stay in.

A statistic is declared once, at import, next to the code that computes
it, and published from inside the training forward pass::

    POS_PER_GT = HealthStat('health/yolo_pos_per_gt', low=1.0, high=10.5,
                            cause='box_format',
                            meaning='gt boxes contain no anchor centres')
    ...
    POS_PER_GT.publish(num_pos, count=num_gt)   # tensors: no host sync

Publishing from a building block (an assigner, a box coder) means every
loss that calls it reports the statistic, including a user's copy of our
loss. The sanity engine collects what was published during the model's
``forward(mode='loss')`` and adds it to the loss dict, so mmengine logs it
(``train/health/...``; no ``loss`` in the name, so it is not summed). A
loss may also return a declared key in its dict directly. On checked
iterations the engine compares each declared key with its range.

Outside a training forward pass, ``publish`` does nothing.
"""
import contextlib
import math
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple, Union

import torch

HEALTH_STATS: Dict[str, 'HealthStat'] = {}
# The step being collected ('store': key -> (sum, count)) and whether it is
# fully checked. One slot, not a stack: a forward pass that raised must not
# leave a stale collection behind.
_active: Dict[str, Any] = dict(store=None, checked=False)


class HealthStat:
    """A declared diagnostic scalar.

    Args:
        name: Key in the loss dict and the logs, e.g.
            ``'health/yolo_pos_per_gt'``; must not contain ``loss``.
            Published values may add ``/<suffix>`` (e.g. a decoder layer).
        low, high: The inclusive range a healthy run stays in.
        cause: Cause code (:data:`.causes.CAUSES`) an out-of-range value
            points to.
        meaning: What an out-of-range value usually means, in words.
        targets_of: The loss terms (names, matched as suffixes of the loss
            dict keys) whose targets this statistic counts. A term that is
            0 while the count is positive has a loss weight of 0; a term
            that is 0 on every strict iteration while the count is 0 too
            has no supervised targets (a label-masking bug).
        fraction: The value is the share of ``count`` items that have a
            property (published as the number of such items with
            ``count``). It is out of range only when its whole 95% Wilson
            interval is: one odd sample in a batch of 4 is sampling noise,
            4 of 4 is not.

    Example:
        >>> IOU = HealthStat('health/my_pos_iou', low=0.01, high=1.0,
        ...                  cause='box_format',
        ...                  meaning='predictions and targets are in '
        ...                          'different frames')
    """

    def __init__(self,
                 name: str,
                 low: float = -math.inf,
                 high: float = math.inf,
                 cause: str = 'health_stat',
                 meaning: str = '',
                 targets_of: Union[str, Tuple[str, ...], None] = None,
                 fraction: bool = False) -> None:
        if 'loss' in name:
            raise ValueError(f"health statistic {name!r}: the name must not "
                             "contain 'loss' (mmengine would sum it)")
        if not low <= high:
            raise ValueError(f'health statistic {name!r}: low {low} > '
                             f'high {high}')
        self.name = name
        self.low = low
        self.high = high
        self.cause = cause
        self.meaning = meaning
        self.targets_of = ((targets_of, ) if isinstance(targets_of, str)
                           else tuple(targets_of or ()))
        self.fraction = fraction
        known = HEALTH_STATS.get(name)
        if known is not None and known.range != self.range:
            raise ValueError(
                f'health statistic {name!r} is already declared with range '
                f'{known.range}, now {self.range}')
        HEALTH_STATS[name] = self

    @property
    def range(self) -> Tuple[float, float]:
        return (self.low, self.high)

    def publish(self,
                value: torch.Tensor,
                count: Union[torch.Tensor, float, None] = None,
                suffix: str = '') -> None:
        """Record a value for the running training step.

        Args:
            value: A scalar tensor; with ``count``, the sum over ``count``
                items, so that repeated publications of one key in a step
                give the mean over all items.
            count: How many items ``value`` sums (a tensor: no host sync).
                A step whose count is 0 is not checked (e.g. a batch with
                no gt boxes has no positives per gt).
            suffix: Appended as ``name/suffix`` (e.g. a decoder layer).
        """
        store = _active['store']
        if store is None:
            return
        key = f'{self.name}/{suffix}' if suffix else self.name
        value = value.detach().float().reshape(())
        if count is None:
            count = torch.ones_like(value)
        elif not isinstance(count, torch.Tensor):
            count = torch.full_like(value, float(count))
        count = count.detach().float().reshape(()).to(value.device)
        total, n = store.get(key, (0.0, 0.0))
        store[key] = (value + total, count + n)

    def violation(self,
                  value: float,
                  bounds: Optional[Tuple[float, float]] = None,
                  count: Optional[float] = None) -> Optional[str]:
        """None if ``value`` is in range (``bounds`` overrides the declared
        one), else a sentence saying so. A ``fraction`` statistic measured
        on ``count`` items is judged by its 95% interval."""
        low, high = bounds or self.range
        if low <= value <= high:
            return None
        if self.fraction and count:
            lower, upper = wilson_interval(value, count)
            if upper >= low and lower <= high:
                return None
            return (f'{value:.4g} ({value * count:.0f} of {count:.0f}; 95% '
                    f'interval [{lower:.3g}, {upper:.3g}]) is outside its '
                    f'range [{low:g}, {high:g}]')
        return f'{value:.4g} is outside its range [{low:g}, {high:g}]'


def wilson_interval(share: float,
                    count: float,
                    z: float = 1.96) -> Tuple[float, float]:
    """The Wilson score interval of a proportion ``share`` of ``count``
    Bernoulli trials (95% for ``z=1.96``)."""
    share = min(max(share, 0.0), 1.0)
    denominator = 1 + z * z / count
    centre = (share + z * z / (2 * count)) / denominator
    half = z * math.sqrt(share * (1 - share) / count + z * z /
                         (4 * count * count)) / denominator
    return max(centre - half, 0.0), min(centre + half, 1.0)


def stat_for(key: str) -> Optional[HealthStat]:
    """The declaration behind a loss-dict key (``name`` or
    ``name/suffix``)."""
    stat = HEALTH_STATS.get(key)
    if stat is None and '/' in key:
        stat = HEALTH_STATS.get(key.rsplit('/', 1)[0])
    return stat


def start_collecting(checked: bool = False) -> None:
    """Collect what is published from now on (dropping any collection a
    failed step left open); ``checked``: the step is fully checked, so
    statistics too costly for every step may be computed."""
    _active['store'] = {}
    _active['checked'] = checked


def checking() -> bool:
    """Whether the running training step is fully checked (publish costly
    statistics only then)."""
    return _active['store'] is not None and _active['checked']


def stop_collecting() -> Dict[str, Tuple[torch.Tensor, torch.Tensor]]:
    """Stop collecting; ``key -> (mean, count)`` of what was published
    since the start (the mean is 0 where the count is)."""
    store, _active['store'] = _active['store'], None
    _active['checked'] = False
    return {
        k: (total / n.clamp(min=1), n)
        for k, (total, n) in (store or {}).items()
    }


@contextlib.contextmanager
def collect() -> Iterator[Dict[str, Tuple[torch.Tensor, torch.Tensor]]]:
    """Collect what is published inside the block; the yielded dict is
    filled with ``key -> (mean, count)`` when the block exits."""
    result: Dict[str, Tuple[torch.Tensor, torch.Tensor]] = {}
    start_collecting()
    try:
        yield result
    finally:
        result.update(stop_collecting())


def health_findings(
    values: Mapping[str, float], counts: Mapping[str, float],
    overrides: Mapping[str, Tuple[float, float]]
) -> List[Tuple[str, HealthStat, float, Tuple[float, float], str]]:
    """``(key, stat, value, range, sentence)`` for each published value out
    of its range (``overrides``: per-run ranges by statistic name); a value
    whose count is 0 measured nothing and is skipped."""
    found = []
    for key, value in values.items():
        stat = stat_for(key)
        if stat is None or counts.get(key, 1.0) == 0:
            continue
        bounds = overrides.get(stat.name) or stat.range
        problem = stat.violation(value, bounds, counts.get(key))
        if problem is not None:
            found.append((key, stat, value, bounds,
                          problem + (f': {stat.meaning}'
                                     if stat.meaning else '')))
    return found
