"""Reports over per-parameter gradient norms that the step guard already
fetched to the host (no further device work)."""
import math
from collections import OrderedDict
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

# Default grad-norm groups: first matching key wins, by name part.
DEFAULT_GROUPS = OrderedDict(
    backbone=('backbone', ), neck=('neck', ), head=('head', 'criterion'))


def group_of(name: str, groups: Mapping[str, Sequence[str]]) -> str:
    """The report group of parameter ``name`` (``'other'`` if none)."""
    parts = name.split('.')
    for group, keys in groups.items():
        if any(key in part for key in keys for part in parts[:-1]):
            return group
    return 'other'


class GradNorms:
    """Per-parameter gradient L2 norms of the trainable parameters.

    A norm is NaN if the gradient has a NaN, inf if it has an inf (and no
    NaN), 0 exactly when the gradient is all zeros, and None when the
    parameter got no gradient at all.

    Args:
        names: Names of the trainable parameters, in module order.
        norms: Their gradient norms (None: no gradient).
    """

    def __init__(self, names: Sequence[str],
                 norms: Sequence[Optional[float]]) -> None:
        if len(names) != len(norms):
            raise ValueError(f'{len(names)} names but {len(norms)} norms')
        self.names = list(names)
        self.norms = list(norms)

    def nonfinite(self, limit: int = 5) -> List[str]:
        """The first ``limit`` parameters with NaN/Inf gradients."""
        bad = [
            f"{name} ({'NaN' if math.isnan(v) else 'Inf'})"
            for name, v in zip(self.names, self.norms)
            if v is not None and not math.isfinite(v)
        ]
        return bad[:limit]

    def coverage(self) -> Tuple[int, int, List[str], List[str]]:
        """``(with_grad, trainable, no_grad, zero_grad)``: the count of
        parameters with a non-zero gradient, the trainable count, and the
        module prefixes of parameters whose gradient is None (not in the
        graph) or exactly zero (in the graph, but nothing flowed, e.g. a
        detection level without positives). Each prefix reads
        ``'bbox_head.* (all)'`` or ``'neck.* (3/8)'``."""
        total: Dict[str, int] = OrderedDict()
        none: Dict[str, int] = OrderedDict()
        zero: Dict[str, int] = OrderedDict()
        for name, value in zip(self.names, self.norms):
            prefix = name.split('.')[0]
            total[prefix] = total.get(prefix, 0) + 1
            if value is None:
                none[prefix] = none.get(prefix, 0) + 1
            elif value == 0.0:
                zero[prefix] = zero.get(prefix, 0) + 1

        def describe(counts: Dict[str, int]) -> List[str]:
            return [
                f'{p}.* (all)' if n == total[p] else f'{p}.* ({n}/{total[p]})'
                for p, n in counts.items()
            ]

        with_grad = len(self.names) - sum(none.values()) - sum(zero.values())
        return with_grad, len(self.names), describe(none), describe(zero)

    def groups(
        self,
        groups: Optional[Mapping[str,
                                 Sequence[str]]] = None) -> Dict[str, float]:
        """L2 norm of each group's gradients."""
        groups = DEFAULT_GROUPS if groups is None else groups
        squares: Dict[str, float] = OrderedDict()
        for name, value in zip(self.names, self.norms):
            if value is not None:
                group = group_of(name, groups)
                squares[group] = squares.get(group, 0.0) + value**2
        return OrderedDict((k, math.sqrt(v)) for k, v in squares.items())


def coverage_finding(
        norms: GradNorms,
        where: str,
        batch_has_targets: bool = True) -> Optional[Tuple[str, str, str, str]]:
    """``(level, cause, message, once_key)`` for parameters without
    gradient: ``'error'`` when none has one (``dead_loss`` when every
    gradient exists and is exactly 0: the loss is flat in the weights;
    ``no_gradient`` when the loss reaches no parameter), ``'warning'`` for
    parameters outside the graph (``'info'`` in a batch without targets,
    where parts that only see targets get nothing), ``'info'`` for
    exactly-zero gradients."""
    with_grad, trainable, no_grad, zero_grad = norms.coverage()
    if with_grad == 0 and trainable > 0 and not no_grad:
        return ('error', 'dead_loss', f'{where}every gradient is exactly 0 '
                f'({trainable} parameters: {summarize(zero_grad)}) although '
                'the loss is computed from them: the loss is flat in the '
                'weights. Between the outputs and the loss sits an operation '
                'with a zero gradient (round, floor, sign, argmax, a '
                'comparison, an integer cast, a clamp saturated everywhere, '
                'a multiplication by 0: dropout with p=1, an all-zero mask)',
                'dead_loss')
    if with_grad == 0 and trainable > 0:
        return ('error', 'no_gradient', f'{where}0/{trainable} parameters '
                f'have non-zero gradients; no grad: '
                f'{summarize(no_grad + zero_grad)}. The loss does not depend '
                'on the trainable parameters.', 'no_gradient')
    head = f'{where}{with_grad}/{trainable} parameters have non-zero ' \
        'gradients; '
    if no_grad and not batch_has_targets:
        return ('info', 'no_gradient',
                f'{head}no grad: {summarize(no_grad)} (this batch '
                'has no gt boxes)', f'no_grad_empty:{no_grad}')
    if no_grad:
        return ('warning', 'no_gradient',
                f'{head}no grad: {summarize(no_grad)}' +
                (f'; zero grad: {summarize(zero_grad)}' if zero_grad else '') +
                ' (parameters outside the graph: unused modules, or a '
                'branch the forward pass skips)', f'no_grad:{no_grad}')
    if zero_grad:
        # In the graph but nothing flowed: normal for parts without
        # targets in this batch or behind a zero-initialised layer.
        return ('info', 'no_gradient',
                f'{head}zero grad: {summarize(zero_grad)} (in the '
                'graph, but nothing flowed back this step: e.g. a detection '
                'level without positives, or LoRA A while B is still zero)',
                f'zero_grad:{zero_grad}')
    return None


def module_norms(names: Sequence[str],
                 values: Sequence[Optional[float]],
                 depth: int = 2) -> Dict[str, float]:
    """L2 norm per module (the first ``depth`` parts of each parameter
    name), in module order; parameters without a value are left out."""
    squares: Dict[str, float] = OrderedDict()
    for name, value in zip(names, values):
        if value is not None:
            module = '.'.join(name.split('.')[:depth])
            squares[module] = squares.get(module, 0.0) + value**2
    return OrderedDict((k, math.sqrt(v)) for k, v in squares.items())


def format_norms(norms: Mapping[str, float], ok: bool) -> str:
    """``[grad] backbone=1.2e-02 head=3.4e-01 ok=True``"""
    body = ' '.join(f'{k}={v:.1e}' for k, v in norms.items())
    return f'[grad] {body} ok={ok}'


def summarize(items: Iterable[str], limit: int = 6) -> str:
    """The first ``limit`` items, comma-separated, and how many more."""
    items = list(items)
    more = f', … (+{len(items) - limit})' if len(items) > limit else ''
    return ', '.join(items[:limit]) + more
