"""Re-running one training step to explain a non-finite value.

Only called when a step already failed, so each helper may synchronise
freely. Every re-run restores parameters, gradients, buffers and the RNG
state, keeps the probe silent, and under DDP runs without gradient sync.
"""
import contextlib
import logging
import math
import re
from typing import Any, Callable, Iterator, List, Mapping, Optional

import torch
import torch.nn as nn
from mmengine.logging import print_log

from .preflight import describe_sample


def _float_tensors(value: Any, path: str) -> Iterator:
    """``(path, tensor)`` of the floating tensors in a batch, recursively
    (dicts, lists, data elements)."""
    if isinstance(value, torch.Tensor):
        if value.is_floating_point() or value.is_complex():
            yield path, value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from _float_tensors(v, f'{path}.{k}' if path else str(k))
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _float_tensors(v, f'{path}[{i}]')
    elif hasattr(value, 'all_items'):  # mmengine data elements
        for k, v in value.all_items():
            yield from _float_tensors(v, f'{path}.{k}')


def nonfinite_batch_entry(batch: Any) -> Optional[str]:
    """The first non-finite floating value of a batch, named by key, item
    and file (``'inputs of data/x.png (img_id 3)'``)."""
    if not isinstance(batch, Mapping):
        return None
    samples = batch.get('data_samples')
    for path, tensor in _float_tensors(batch, ''):
        if bool(torch.isfinite(tensor).all()):
            continue
        match = re.search(r'\[(\d+)\]', path)
        index = int(match.group(1)) if match else None
        name = path
        if (index is not None and isinstance(samples, (list, tuple))
                and index < len(samples)):
            name = (f'{path.split("[")[0]} of '
                    f'{describe_sample(samples[index], index)}')
        elif tensor.dim() > 0:
            rows = (~torch.isfinite(tensor)).reshape(len(tensor), -1).any(1)
            name = f'{path} of batch item {int(rows.nonzero()[0])}'
        return name
    return None


class StepRerun:
    """Re-runs of the recorded batch through the model.

    Args:
        model: The unwrapped model.
        ddp: The DDP wrapper (its ``no_sync`` is used), or None.
        autocast: Factory of the forward pass's autocast context.
        pause: Factory of a context that silences the probe.
    """

    def __init__(self, model: nn.Module, ddp: Optional[nn.Module],
                 autocast: Callable, pause: Callable) -> None:
        self.model = model
        self.ddp = ddp
        self.autocast = autocast
        self.pause = pause

    @contextlib.contextmanager
    def _restored(self):
        model = self.model
        params = list(model.parameters())
        grads = [p.grad for p in params]
        buffers = {k: v.clone() for k, v in model.named_buffers()}
        rng = torch.get_rng_state()
        cuda_rng = (
            torch.cuda.get_rng_state_all()
            if torch.cuda.is_available() else None)
        try:
            with self.pause(), self.autocast():
                yield
        finally:
            for p, g in zip(params, grads):
                p.grad = g
            for k, v in model.named_buffers():
                v.copy_(buffers[k])
            torch.set_rng_state(rng)
            if cuda_rng is not None:
                torch.cuda.set_rng_state_all(cuda_rng)

    def _losses(self, batch: Any):
        data = self.model.data_preprocessor(batch, True)
        if isinstance(data, dict):
            return self.model(**data, mode='loss')
        return self.model(*data, mode='loss')

    def first_nonfinite_module(self,
                               batch: Any,
                               masks_allowed: bool = False) -> Optional[str]:
        """``'neck.conv (Conv2d, finite inputs)'``: the first module, in
        execution order, whose output is non-finite. With
        ``masks_allowed``, an output whose only non-finite values are
        ``-inf`` (an attention or score mask) does not count."""
        found: List[str] = []

        def bad(t: torch.Tensor) -> bool:
            if bool(torch.isfinite(t).all()):
                return False
            if not masks_allowed:
                return True
            return bool(torch.isnan(t).any() or (t == math.inf).any())

        def make(name):

            def hook(module, args, output):
                if found:
                    return
                flat = output if isinstance(output,
                                            (list, tuple)) else [output]
                if any(
                        isinstance(t, torch.Tensor) and t.is_floating_point()
                        and bad(t) for t in flat):
                    inputs_ok = all(
                        bool(torch.isfinite(a).all()) for a in args
                        if isinstance(a, torch.Tensor)
                        and a.is_floating_point())
                    found.append(f'{name} ({type(module).__name__}' +
                                 (', finite inputs)' if inputs_ok else ')'))

            return hook

        handles = [
            m.register_forward_hook(make(n))
            for n, m in self.model.named_modules() if n
        ]
        try:
            with self._restored(), torch.no_grad():
                self._losses(batch)
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

    def backward(self, batch: Any, anomaly: bool) -> str:
        """Forward and backward without a loss scale; the anomaly message,
        ``'non-finite'`` if the gradients still are, or ``''``."""
        message = ''
        sync = (
            self.ddp.no_sync()
            if self.ddp is not None else contextlib.nullcontext())
        try:
            with self._restored(), sync:
                for p in self.model.parameters():
                    p.grad = None
                ctx = (
                    torch.autograd.detect_anomaly(check_nan=True)
                    if anomaly else contextlib.nullcontext())
                with ctx:
                    total, _ = self.model.parse_losses(self._losses(batch))
                    total.backward()
                if any(p.grad is not None
                       and not bool(torch.isfinite(p.grad).all())
                       for p in self.model.parameters()):
                    message = 'non-finite'
        except RuntimeError as exc:
            message = str(exc)
        return message

    def backward_op(self, batch: Any) -> Optional[str]:
        """The backward op that produced the first NaN (anomaly mode)."""
        message = self.backward(batch, anomaly=True)
        if not message:
            return None
        match = re.search(r"Function '(\w+)' returned nan", message)
        return match.group(1) if match else message.splitlines()[0][:200]


def input_scale(batch: Any) -> Optional[str]:
    """A sentence if the float ``inputs`` of a batch are far from unit
    scale (mean |x| or std above 100), else None."""
    if not isinstance(batch, Mapping):
        return None
    inputs = batch.get('inputs')
    tensors = inputs if isinstance(inputs, (list, tuple)) else [inputs]
    tensors = [
        t for t in tensors
        if isinstance(t, torch.Tensor) and t.is_floating_point() and t.numel()
    ]
    if not tensors:
        return None
    x = torch.cat([t.detach().float().flatten() for t in tensors])
    mean_abs = float(x.abs().mean())
    std = float(x.std()) if x.numel() > 1 else 0.0
    if max(mean_abs, std) <= 100:
        return None
    return (f'the float inputs are far from unit scale (mean |x| '
            f'{mean_abs:.4g}, std {std:.4g}): unnormalized features make '
            'the first layer\'s gradients and updates huge; standardize '
            'them (or set the data preprocessor\'s mean/std)')
