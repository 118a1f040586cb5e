"""What a checkpoint says about a run: parameters that never moved,
non-finite weights, and how far the EMA weights are from the live ones."""
import math
from collections import OrderedDict
from typing import Any, Dict, List, Optional

import torch

# Buffers and counters, not learned weights.
_NOT_LEARNED = ('running_mean', 'running_var', 'num_batches_tracked',
                'steps')


def _load(path: str) -> Dict[str, Any]:
    """A checkpoint, loaded weights-only, allowing for this load only what
    mmengine checkpoints pickle besides tensors."""
    from engine_plugins.compat import mmengine_safe_globals
    allowed = torch.serialization.get_safe_globals()
    # Only what is not allowed already: leaving the context removes what
    # it added, even entries a global allowlist had.
    extra = [g for g in mmengine_safe_globals() if g not in allowed]
    with torch.serialization.safe_globals(extra):
        return torch.load(path, map_location='cpu', weights_only=True)


def _weights(state: Dict[str, Any]) -> Dict[str, torch.Tensor]:
    return OrderedDict(
        (k, v) for k, v in state.items()
        if isinstance(v, torch.Tensor) and v.is_floating_point()
        and not k.endswith(_NOT_LEARNED))


def _module(name: str, depth: int = 2) -> str:
    return '.'.join(name.split('.')[:depth])


def audit_checkpoint(path: str,
                     reference: Optional[str] = None) -> Dict[str, Any]:
    """Audit ``path`` against ``reference`` (an earlier checkpoint of the
    same run, e.g. its first).

    Returns:
        ``iter``; ``nonfinite``: module -> count of tensors with NaN/Inf;
        ``dead``: tensors equal to the reference's (never updated since),
        grouped by module, with the reference's iteration; ``ema``: module
        -> relative distance ``||ema - live|| / ||live||``, when the
        checkpoint holds EMA weights.
    """
    ckpt = _load(path)
    state = _weights(ckpt.get('state_dict', ckpt))
    out: Dict[str, Any] = dict(
        iter=ckpt.get('meta', {}).get('iter'), tensors=len(state))
    nonfinite: Dict[str, int] = OrderedDict()
    for name, value in state.items():
        if not bool(torch.isfinite(value).all()):
            nonfinite[_module(name)] = nonfinite.get(_module(name), 0) + 1
    out['nonfinite'] = nonfinite
    if reference is not None:
        ref = _load(reference)
        ref_state = _weights(ref.get('state_dict', ref))
        dead: Dict[str, List[str]] = OrderedDict()
        for name, value in state.items():
            old = ref_state.get(name)
            if old is not None and old.shape == value.shape and \
                    torch.equal(old, value):
                dead.setdefault(_module(name), []).append(name)
        out['dead'] = dead
        out['reference_iter'] = ref.get('meta', {}).get('iter')
    if 'ema_state_dict' in ckpt:
        # mmengine's EMAHook saves the EMA weights as state_dict and the
        # live ones as ema_state_dict (prefixed 'module.').
        live = {
            k[len('module.'):]: v
            for k, v in _weights(ckpt['ema_state_dict']).items()
            if k.startswith('module.')
        }
        squares: Dict[str, List[float]] = OrderedDict()
        for name, value in state.items():
            other = live.get(name)
            if other is None or other.shape != value.shape:
                continue
            acc = squares.setdefault(_module(name), [0.0, 0.0])
            acc[0] += float((value.float() - other.float()).pow(2).sum())
            acc[1] += float(other.float().pow(2).sum())
        out['ema'] = OrderedDict(
            (m, math.sqrt(d / w) if w > 0 else math.inf)
            for m, (d, w) in squares.items())
    return out
