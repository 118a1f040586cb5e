"""Gradient and loss-term reports used by the sanity optim wrappers."""
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


def grad_coverage(named_params: NamedParams) -> Tuple[int, int, List[str]]:
    """Count trainable parameters with a non-None, non-zero gradient.

    Returns:
        ``(with_grad, trainable, missing_prefixes)``; each prefix reads
        ``'bbox_head.* (all)'`` or ``'neck.* (3/8)'`` (parameters without a
        gradient / parameters under that top-level module).
    """
    total: Dict[str, int] = OrderedDict()
    missing: Dict[str, int] = OrderedDict()
    with_grad = trainable = 0
    for name, param in named_params:
        if not param.requires_grad:
            continue  # frozen by design (peft, frozen stages)
        trainable += 1
        prefix = name.split('.')[0]
        total[prefix] = total.get(prefix, 0) + 1
        if param.grad is not None and bool(param.grad.detach().any()):
            with_grad += 1
        else:
            missing[prefix] = missing.get(prefix, 0) + 1
    prefixes = [
        f'{p}.* (all)' if n == total[p] else f'{p}.* ({n}/{total[p]})'
        for p, n in missing.items()
    ]
    return with_grad, trainable, prefixes


def nonfinite_grads(named_params: NamedParams, limit: int = 5) -> List[str]:
    """Names of the first ``limit`` parameters whose grad has NaN/Inf, in
    module registration order (input side first)."""
    bad = []
    for name, param in named_params:
        grad = param.grad
        if grad is not None and not bool(torch.isfinite(grad).all()):
            kind = 'NaN' if bool(torch.isnan(grad).any()) else 'Inf'
            bad.append(f'{name} ({kind})')
            if len(bad) >= limit:
                break
    return bad


def group_grad_norms(
    named_params: NamedParams,
    groups: Optional[Mapping[str, Sequence[str]]] = None
) -> Dict[str, torch.Tensor]:
    """L2 norm of the gradients of each parameter group (tensors, no host
    sync)."""
    groups = DEFAULT_GROUPS if groups is None else groups
    grads: Dict[str, List[torch.Tensor]] = OrderedDict()
    for name, param in named_params:
        if param.grad is not None:
            grads.setdefault(_group_of(name, groups), []).append(param.grad)
    return OrderedDict((group,
                        torch.linalg.vector_norm(
                            torch.stack(torch._foreach_norm(tensors)).float()))
                       for group, tensors in grads.items())


def format_norms(norms: Mapping[str, float], ok: bool) -> str:
    """``[grad] backbone=1.2e-02 head=3.4e-01 ok=True``"""
    body = ' '.join(f'{k}={v:.1e}' for k, v in norms.items())
    return f'[grad] {body} ok={ok}'


def summarize(items: Iterable[str], limit: int = 6) -> str:
    items = list(items)
    more = f', … (+{len(items) - limit})' if len(items) > limit else ''
    return ', '.join(items[:limit]) + more
