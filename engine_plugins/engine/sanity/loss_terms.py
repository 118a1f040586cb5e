"""Checks of the loss dict a model returns from ``forward(mode='loss')``.

mmengine's ``parse_losses`` sums the values whose key contains ``loss``
(tensors or lists of tensors) and logs the rest. These checks explain,
before that code fails or silently drops a term, what is wrong with the
dict as returned.
"""
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch

from . import health
from .errors import LossDictError


def _tensors(value: Any) -> List[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def check_loss_dict(losses: Any) -> List[str]:
    """Raise :class:`LossDictError` for a dict mmengine cannot optimise;
    return the keys without ``loss`` whose tensors carry gradients (they
    are logged but not optimised: usually a misnamed term).

    Cheap: Python attribute checks only, no device work.
    """
    if not isinstance(losses, Mapping):
        raise LossDictError(
            f"forward(mode='loss') returned a {type(losses).__name__}, not "
            "a dict of loss tensors: return e.g. dict(loss_cls=...)")
    if not losses:
        raise LossDictError(
            "forward(mode='loss') returned an empty dict: nothing to "
            'optimise (did every loss branch get skipped for this batch?)')
    summed = [k for k in losses if 'loss' in k]
    if not summed:
        raise LossDictError(
            f'none of the loss dict keys {sorted(losses)} contains '
            "'loss': mmengine sums only keys containing 'loss', so nothing "
            "would be optimised; name the terms 'loss_*'")
    for key in summed:
        for value in _tensors(losses[key]):
            if not isinstance(value, torch.Tensor):
                raise LossDictError(
                    f'loss term {key!r} is a {type(value).__name__} '
                    f'({value!r}), not a tensor: a Python number carries no '
                    'gradient (was it converted with .item() or float()?)')
    hidden = []
    for key, value in losses.items():
        if 'loss' in key:
            continue
        if any(
                isinstance(v, torch.Tensor) and v.grad_fn is not None
                for v in _tensors(value)):
            hidden.append(key)
    return hidden


def dead_loss_terms(losses: Mapping[str, Any]) -> Dict[str, str]:
    """Loss terms that cannot train, with the reason for each.

    A term is dead when it does not require grad (detached, built from
    data only, or from a fresh leaf tensor that is not a model parameter),
    or is non-finite. ``'zero'`` marks a term that is exactly 0.0: legal
    for one batch, fatal if every term is. One host sync per term: run it
    on checked iterations only.
    """
    dead = {}
    for name, value in losses.items():
        if 'loss' not in name:
            continue  # logged values (accuracy, ...) are not optimised
        for term in _tensors(value):
            if term.grad_fn is None:
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


def has_graph(losses: Mapping[str, Any]) -> bool:
    """Whether any summed term is connected to the autograd graph (else
    backward would fail). No device work."""
    return any(
        isinstance(v, torch.Tensor) and v.grad_fn is not None
        for key, value in losses.items() if 'loss' in key
        for v in _tensors(value))


def term_values(losses: Mapping[str, Any]) -> Dict[str, torch.Tensor]:
    """Each tensor entry as a 0-d float tensor, as mmengine logs it (mean;
    a list is the sum of its means). Device ops only, no sync."""
    out = {}
    for key, value in losses.items():
        if isinstance(value, torch.Tensor) and value.dim() == 0 \
                and value.dtype == torch.float32:
            # The usual case, without the ops of the general one.
            out[key] = value.detach()
            continue
        tensors = [v for v in _tensors(value) if isinstance(v, torch.Tensor)]
        if tensors:
            out[key] = sum(t.detach().float().mean() for t in tensors)
    return out


def violated_stat(published: Mapping[str, Any]) -> Optional[Tuple[str, str]]:
    """``(cause, sentence)`` of the first published health statistic out
    of its range (one host sync each: failure paths only)."""
    for key, (value, count) in published.items():
        stat = health.stat_for(key)
        if stat is None or float(count) == 0:
            continue
        problem = stat.violation(float(value), count=float(count))
        if problem is not None:
            return stat.cause, (f'{key} = {problem}' +
                                (f': {stat.meaning}' if stat.meaning else ''))
    return None


def dead_loss_findings(losses: Mapping[str, Any],
                       published: Mapping[str, Any],
                       force: bool = False) -> List[Tuple[str, str]]:
    """``(message, cause)`` for a loss that cannot train (every term dead,
    or ``force``: the total has no graph), then for single dead terms.
    ``cause`` is None for the default (``dead_loss``); a published health
    statistic out of range supplies a more precise one."""
    dead = dead_loss_terms(losses)
    zero = [k for k, v in dead.items() if v == 'zero']
    nonfinite = {k for k, v in dead.items() if v.startswith('is non')}
    broken = {
        k: v
        for k, v in dead.items() if k not in zero and k not in nonfinite
    }
    terms = [k for k in losses if 'loss' in k]
    found = []
    if force or len(broken) + len(zero) == len(terms):
        parts = [f'{k} {v}' for k, v in broken.items()]
        if zero:
            parts.append(f'{", ".join(zero)} '
                         f'{"is" if len(zero) == 1 else "are"} 0.0')
        detail = '; '.join(parts) or 'the total loss is detached'
        evidence = violated_stat(published)
        if evidence:
            detail += f', and {evidence[1]}'
        found.append(
            (f'the loss cannot train the model: {detail}. Backward would '
             'give no gradients (under AMP GradScaler would fail with '
             "'No inf checks were recorded for this optimizer'). Every loss "
             'term must be computed from the model outputs; an all-zero '
             'loss usually means predictions were never matched to targets '
             '(e.g. raw head outputs not decoded or assigned).',
             evidence[0] if evidence else None))
    if broken:
        found.append(('dead loss terms: ' + '; '.join(
            f'{k} {v}' for k, v in broken.items()) + '. They are summed '
                      'into the loss but cannot produce gradients: remove '
                      'the .detach() / torch.no_grad() / .item() on their '
                      'path, or log them without "loss" in the name', None))
    return found
