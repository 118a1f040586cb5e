"""How a checkpoint's weights fit a model: missing keys, unexpected keys and
shape mismatches, grouped by module.

mmengine loads ``load_from`` and ``tools/test.py`` checkpoints with
``strict=False``: a checkpoint of another model only logs "do not match
exactly", and the test then evaluates random weights. The comparison here
lets a load be refused (strict) or report what was re-initialized.
"""
import re
from collections import OrderedDict
from typing import Dict, List, Mapping, Sequence, Tuple

import torch

# The prefix that DDP-wrapped models add; mmengine strips it on load.
_WRAPPER_PREFIX = re.compile(r'^module\.')


class CheckpointMismatchError(RuntimeError):
    """A checkpoint's weights do not fit the model it is loaded into."""


def checkpoint_weights(checkpoint: Mapping) -> Dict[str, torch.Tensor]:
    """The model weights of a loaded checkpoint, keyed as the model names
    them (mmengine's ``state_dict`` entry, or a bare state dict)."""
    state = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state, Mapping):
        return {}
    return {
        _WRAPPER_PREFIX.sub('', name): value
        for name, value in state.items() if isinstance(value, torch.Tensor)
    }


class KeyMatch:
    """The comparison of checkpoint weights with a model's state dict.

    Args:
        weights: Checkpoint tensors by name (:func:`checkpoint_weights`).
        expected: The model's ``state_dict()``.
    """

    def __init__(self, weights: Mapping[str, torch.Tensor],
                 expected: Mapping[str, torch.Tensor]) -> None:
        self.missing = [k for k in expected if k not in weights]
        self.unexpected = [k for k in weights if k not in expected]
        self.shape_mismatch: List[Tuple[str, tuple, tuple]] = [
            (k, tuple(weights[k].shape), tuple(expected[k].shape))
            for k in expected
            if k in weights and weights[k].shape != expected[k].shape
        ]
        self.loaded = len(expected) - len(self.missing) - len(
            self.shape_mismatch)
        self.total = len(expected)

    @property
    def exact(self) -> bool:
        return not (self.missing or self.unexpected or self.shape_mismatch)

    @property
    def reinitialized(self) -> List[str]:
        """Model entries that keep their initial values after a non-strict
        load."""
        return self.missing + [k for k, _, _ in self.shape_mismatch]

    def describe(self, depth: int = 2, examples: int = 3) -> str:
        """Lines listing the mismatches grouped by their leading ``depth``
        name components (``backbone.stage1``)."""
        lines = []
        for title, names in (('missing from the checkpoint', self.missing),
                             ('in the checkpoint but not in the model',
                              self.unexpected)):
            if names:
                lines.append(f'{len(names)} {title}: '
                             f'{_grouped(names, depth, examples)}')
        if self.shape_mismatch:
            shown = ', '.join(f'{k} {tuple(a)} vs model {tuple(b)}'
                              for k, a, b in self.shape_mismatch[:examples])
            more = len(self.shape_mismatch) - examples
            lines.append(
                f'{len(self.shape_mismatch)} with another shape: {shown}' +
                (f' (+{more} more)' if more > 0 else '') + ' — by module: ' +
                _grouped([k for k, _, _ in self.shape_mismatch], depth, 0))
        return '\n  '.join(lines)


def _grouped(names: Sequence[str], depth: int, examples: int) -> str:
    groups: 'OrderedDict[str, List[str]]' = OrderedDict()
    for name in names:
        parts = name.split('.')
        module = '.'.join(parts[:min(depth, len(parts) - 1)]) or '(top)'
        groups.setdefault(module, []).append(name)
    out = []
    for module, members in groups.items():
        text = f'{module} ({len(members)})'
        if examples:
            text += ' e.g. ' + ', '.join(
                m[len(module) + 1:] if m.startswith(module + '.') else m
                for m in members[:examples])
        out.append(text)
    return '; '.join(out)
