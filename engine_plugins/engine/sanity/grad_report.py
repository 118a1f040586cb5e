"""Gradient and loss-term reports used by the sanity optim wrappers."""
import math
from collections import OrderedDict
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import torch

NamedParams = Sequence[Tuple[str, torch.nn.Parameter]]

# Default grad-norm groups: first matching key wins, by name prefix/part.
DEFAULT_GROUPS = OrderedDict(
    backbone=('backbone', ), neck=('neck', ), head=('head', 'criterion'))


def dead_loss_terms(losses: Mapping[str, torch.Tensor]) -> Dict[str, str]:
    """Loss terms that cannot train, with the reason for each.

    A term is dead when it is not a tensor, does not require grad
    (detached, built from data only, or from a fresh leaf tensor that is
    not a model parameter), or is non-finite. ``'zero'`` marks a term that
    is exactly 0.0: legal for one batch, fatal if every term is.
    """
    dead = {}
    for name, value in losses.items():
        if 'loss' not in name:
            continue  # logged values (accuracy, ...) are not optimised
        terms = value if isinstance(value, (list, tuple)) else [value]
        for term in terms:
            if not isinstance(term, torch.Tensor):
                dead[name] = f'is a {type(term).__name__}, not a tensor'
            elif term.grad_fn is None:
                value = f'= {term.detach().float().sum().item():g}'
                dead[name] = (
                    f'{value} is a leaf tensor, not computed from the model'
                    if term.requires_grad else
                    f'{value} is detached from the graph (no grad_fn)')
            elif not bool(torch.isfinite(term.detach()).all()):
                dead[name] = f'is non-finite ({term.detach().sum().item()})'
            elif not bool(term.detach().any()):
                dead[name] = 'zero'
    return dead


def _group_of(name: str, groups: Mapping[str, Sequence[str]]) -> str:
    parts = name.split('.')
    for group, keys in groups.items():
        if any(key in part for key in keys for part in parts[:-1]):
            return group
    return 'other'


class GradNorms:
    """Per-parameter gradient L2 norms, computed with one host sync.

    Every report below derives from these norms: a norm is NaN if the
    gradient has a NaN, inf if it has an inf (and no NaN), and 0 exactly
    when the gradient is all zeros.

    Args:
        named_params: ``(name, parameter)`` pairs in module order.
        scale: Divide norms by this (a GradScaler's loss scale).
    """

    def __init__(self, named_params: NamedParams, scale: float = 1.0) -> None:
        trainable = [(n, p) for n, p in named_params if p.requires_grad]
        self.names = [n for n, _ in trainable]
        with_grad = [(i, p.grad) for i, (_, p) in enumerate(trainable)
                     if p.grad is not None]
        self.norms: List[Optional[float]] = [None] * len(trainable)
        if with_grad:
            values = torch.stack(
                torch._foreach_norm([g for _, g in with_grad])).float()
            for (i, _), value in zip(with_grad, (values / scale).tolist()):
                self.norms[i] = value

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
        parameters with a non-zero gradient, the trainable count (frozen
        ones are not counted), and the module prefixes of parameters whose
        gradient is None (not in the graph) or exactly zero (in the graph,
        but nothing flowed, e.g. a detection level without positives). Each
        prefix reads ``'bbox_head.* (all)'`` or ``'neck.* (3/8)'``."""
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
                group = _group_of(name, groups)
                squares[group] = squares.get(group, 0.0) + value**2
        return OrderedDict((k, math.sqrt(v)) for k, v in squares.items())


def format_norms(norms: Mapping[str, float], ok: bool) -> str:
    """``[grad] backbone=1.2e-02 head=3.4e-01 ok=True``"""
    body = ' '.join(f'{k}={v:.1e}' for k, v in norms.items())
    return f'[grad] {body} ok={ok}'


def summarize(items: Iterable[str], limit: int = 6) -> str:
    items = list(items)
    more = f', … (+{len(items) - limit})' if len(items) > limit else ''
    return ', '.join(items[:limit]) + more
