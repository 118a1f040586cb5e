"""Per-tensor checksums of the weights a checkpoint holds.

A checkpoint written by :class:`~engine_plugins.engine.hooks.
SafeCheckpointHook` carries, in ``meta['integrity']``, the CRC-32 of every
tensor of its ``state_dict`` (and ``ema_state_dict``). The loader verifies
them, so weights changed after saving (a zeroed tensor, NaNs written by a
buggy conversion script, a bit flip that kept the zip valid because the
archive was re-packed) are named instead of trained or evaluated.
Optimizer state is not covered.
"""
import zlib
from typing import Dict, List, Mapping

import torch

INTEGRITY_KEY = 'integrity'
CHECKED_DICTS = ('state_dict', 'ema_state_dict')


class CheckpointIntegrityError(RuntimeError):
    """Tensors of a checkpoint differ from the checksums saved with it."""


def tensor_crc32(tensor: torch.Tensor) -> int:
    """CRC-32 of the bytes of ``tensor`` (any dtype, any device)."""
    flat = tensor.detach().reshape(-1).contiguous().cpu()
    return zlib.crc32(flat.view(torch.uint8).numpy().tobytes())


def _tensors(state: Mapping) -> Dict[str, torch.Tensor]:
    return {
        name: value
        for name, value in state.items()
        if isinstance(value, torch.Tensor) and value.layout == torch.strided
    }


def checksums(checkpoint: Mapping) -> Dict:
    """The integrity record of ``checkpoint``: the CRC-32 of each tensor of
    its weight dicts."""
    record = {'algorithm': 'crc32'}
    for key in CHECKED_DICTS:
        state = checkpoint.get(key)
        if isinstance(state, Mapping):
            record[key] = {
                name: tensor_crc32(value)
                for name, value in _tensors(state).items()
            }
    return record


def add_checksums(checkpoint: dict) -> None:
    """Store :func:`checksums` in ``checkpoint['meta']['integrity']``."""
    checkpoint.setdefault('meta', {})[INTEGRITY_KEY] = checksums(checkpoint)


def _what_changed(tensor: torch.Tensor) -> str:
    if tensor.is_floating_point() or tensor.is_complex():
        bad = int((~torch.isfinite(tensor)).sum())
        if bad:
            return f'{bad} of {tensor.numel()} values are NaN/Inf'
    if tensor.numel() and not bool(tensor.any()):
        return 'all values are 0'
    return 'its values changed'


def verify_checksums(checkpoint: Mapping, filename: str) -> None:
    """Compare the tensors of ``checkpoint`` with the checksums saved with
    it. A checkpoint without a record (written elsewhere) passes.

    Raises:
        CheckpointIntegrityError: naming ``filename`` and each tensor that
            differs, missing or was added, with what is wrong with it.
    """
    meta = checkpoint.get('meta')
    record = meta.get(INTEGRITY_KEY) if isinstance(meta, Mapping) else None
    if not isinstance(record, Mapping) or record.get('algorithm') != 'crc32':
        return
    problems: List[str] = []
    for key in CHECKED_DICTS:
        saved = record.get(key)
        state = checkpoint.get(key)
        if saved is None:
            continue
        if not isinstance(state, Mapping):
            problems.append(f"'{key}' is missing")
            continue
        tensors = _tensors(state)
        for name in saved:
            if name not in tensors:
                problems.append(f'{key}.{name} is missing')
            elif tensor_crc32(tensors[name]) != saved[name]:
                problems.append(
                    f'{key}.{name} differs from its saved checksum '
                    f'({_what_changed(tensors[name])})')
        problems += [
            f'{key}.{name} was added after saving' for name in tensors
            if name not in saved
        ]
    if problems:
        shown = '\n  '.join(problems[:10])
        more = (f'\n  ... and {len(problems) - 10} more'
                if len(problems) > 10 else '')
        raise CheckpointIntegrityError(
            f'checkpoint {filename} was changed after it was saved; '
            f'{len(problems)} tensor(s) do not match the checksums stored '
            f'in its meta:\n  {shown}{more}\nUse an earlier checkpoint, or '
            "delete meta['integrity'] if the change was intended.")
