"""Fine-tuning on other classes: re-initialize a checkpoint's class head,
and nothing else.

A detector keeps its class set in a few parts: the class scores, the
prototypes or label embeddings. Loading a checkpoint trained on other
classes (COCO's 80, say, into a 3-class model) must replace exactly those
and load everything else as strictly as any other load. A model declares
them with two class attributes::

    class RTDETR(BaseDetector):
        class_head_prefixes = ('decoder.query_selection.score_head.',
                               'decoder.score_heads.',
                               'decoder.denoising.label_embedding.')
        class_count_key = 'decoder.query_selection.score_head.bias'

:func:`reinit_class_head` then compares a checkpoint with the model: when
the class counts differ (or the checkpoint has no class head at all, as
converted ultralytics weights), each class-head entry that the checkpoint
lacks or has in another shape is replaced, in the checkpoint, by the
model's own initial value. Loading the edited checkpoint then gives the
model (and, through the same checkpoint, an EMA copy) a fresh class head
and the checkpoint's weights everywhere else; anything else that does not
fit is left for the strict check to refuse. ``ReinitClassHeadHook`` does
this for ``load_from`` in training runs.

Example:
    >>> head = ClassHead.of(model)  # the model's declaration
    >>> result = reinit_class_head(checkpoint, model.state_dict(), head)
    >>> print(result.describe('work_dirs/coco.pth'))
    load_from work_dirs/coco.pth: class head re-initialized (checkpoint 80
    classes, model 3): 15 tensors (15 of another shape)
    [decoder.query_selection.score_head.{weight,bias},
    decoder.score_heads.{0-5}.{weight,bias},
    decoder.denoising.label_embedding.weight]; 776 tensors loaded
"""
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import (Any, Dict, List, Mapping, MutableMapping, Optional,
                    Sequence, Tuple)

import torch

# The prefix that DDP-wrapped models add; mmengine strips it on load.
_WRAPPER_PREFIX = re.compile(r'^module\.')


@dataclass(frozen=True)
class ClassHead:
    """Where a model keeps its class set.

    Attributes:
        prefixes: State-dict name prefixes of the class-dependent parts.
            A prefix that ends a module name ends with ``'.'``
            (``'decoder.score_heads.'``), so that it does not match
            ``decoder.score_heads_extra``.
        count_key: The state-dict entry whose first dimension is the class
            count.
    """

    prefixes: Tuple[str, ...]
    count_key: str

    @classmethod
    def of(cls,
           model: Any,
           prefixes: Optional[Sequence[str]] = None,
           count_key: Optional[str] = None) -> 'ClassHead':
        """The class head ``model`` declares (``class_head_prefixes``,
        ``class_count_key``), or the one given.

        Raises:
            ValueError: neither the model nor the arguments name one.
        """
        prefixes = prefixes or getattr(model, 'class_head_prefixes', None)
        count_key = count_key or getattr(model, 'class_count_key', None)
        if not prefixes or not count_key:
            raise ValueError(
                f'{type(model).__name__} declares no class head: give the '
                'model class attributes class_head_prefixes (state-dict '
                'name prefixes of every part whose weights depend on the '
                'classes) and class_count_key (the entry whose first '
                'dimension is the class count), or pass prefixes= and '
                'count_key= to ReinitClassHeadHook')
        return cls(tuple(prefixes), str(count_key))

    def __contains__(self, name: str) -> bool:
        return name.startswith(self.prefixes)

    def check(self, model_state: Mapping[str, torch.Tensor],
              model_name: str) -> None:
        """Check that the declaration names entries of ``model_state``.

        Raises:
            ValueError: ``count_key`` is not an entry, or no prefix matches
                one.
        """
        if self.count_key not in model_state:
            raise ValueError(
                f'{model_name}: class_count_key {self.count_key!r} is not '
                f'in its state dict (e.g. {list(model_state)[:3]})')
        if not any(name in self for name in model_state):
            raise ValueError(
                f'{model_name}: no state-dict entry starts with any of the '
                f'class_head_prefixes {list(self.prefixes)}')


@dataclass
class ClassHeadReinit:
    """What :func:`reinit_class_head` did to a checkpoint.

    Attributes:
        checkpoint_classes: The checkpoint's class count, None when it has
            no ``count_key`` entry (no class head).
        model_classes: The model's class count.
        reshaped: ``(name, checkpoint shape, model shape)`` of the
            class-head entries the checkpoint has in another shape.
        missing: Class-head entries the checkpoint lacks.
        total: Entries of the model's state dict.
    """

    checkpoint_classes: Optional[int]
    model_classes: int
    reshaped: List[Tuple[str, tuple, tuple]] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)
    total: int = 0

    @property
    def reinitialized(self) -> List[str]:
        """The model entries that keep their initial values."""
        return [name for name, _, _ in self.reshaped] + self.missing

    @property
    def loaded(self) -> int:
        """Model entries the checkpoint provides (if nothing else is
        amiss)."""
        return self.total - len(self.reinitialized)

    def describe(self, source: str) -> str:
        """The one-line report, e.g. ``load_from X: class head
        re-initialized (checkpoint 80 classes, model 3): 6 tensors [...];
        412 tensors loaded``."""
        if self.checkpoint_classes is None:
            classes = (f'checkpoint without a class head, model '
                       f'{self.model_classes} classes')
        else:
            classes = (f'checkpoint {self.checkpoint_classes} classes, '
                       f'model {self.model_classes}')
        parts = []
        if self.reshaped:
            parts.append(f'{len(self.reshaped)} of another shape')
        if self.missing:
            parts.append(f'{len(self.missing)} not in the checkpoint')
        return (f'load_from {source}: class head re-initialized ({classes}'
                f'): {len(self.reinitialized)} tensors '
                f'({", ".join(parts)}) '
                f'[{compact_names(self.reinitialized)}]; {self.loaded} '
                'tensors loaded')


def state_dict_of(checkpoint: MutableMapping) -> MutableMapping:
    """The weights mapping inside a loaded checkpoint, as mmengine's
    loader picks it (``state_dict`` entry, or the checkpoint itself)."""
    state = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state, MutableMapping):
        raise TypeError(f'the checkpoint\'s state_dict is a '
                        f'{type(state).__name__}, not a mapping')
    return state


def reinit_class_head(checkpoint: MutableMapping,
                      model_state: Mapping[str, torch.Tensor],
                      head: ClassHead) -> ClassHeadReinit:
    """Give the model's initial class head to a checkpoint of other
    classes, in place.

    Nothing changes when the checkpoint has as many classes as the model.
    Otherwise every class-head entry of ``model_state`` that the checkpoint
    lacks or has in another shape is set, in the checkpoint, to a copy of
    the model's value (its initial one, when called before loading).
    Class-head entries of the same shape, and everything outside the class
    head, stay as they are: a mismatch there is for the strict check to
    refuse.

    Args:
        checkpoint: A loaded checkpoint (``{'state_dict': ...}`` or a bare
            state dict); keys may carry DDP's ``module.`` prefix.
        model_state: The model's ``state_dict()``.
        head: The model's class head.

    Returns:
        What was replaced, and the class counts.
    """
    state = state_dict_of(checkpoint)
    keys: Dict[str, str] = {
        _WRAPPER_PREFIX.sub('', k): k
        for k, v in state.items() if isinstance(v, torch.Tensor)
    }
    count = keys.get(head.count_key)
    result = ClassHeadReinit(
        checkpoint_classes=None
        if count is None else int(state[count].shape[0]),
        model_classes=int(model_state[head.count_key].shape[0]),
        total=len(model_state))
    if result.checkpoint_classes == result.model_classes:
        return result
    for name, value in model_state.items():
        if name not in head:
            continue
        if name not in keys:
            result.missing.append(name)
            state[name] = value.detach().clone()
            continue
        stored = state[keys[name]]
        if stored.shape != value.shape:
            result.reshaped.append(
                (name, tuple(stored.shape), tuple(value.shape)))
            state[keys[name]] = value.detach().clone()
    return result


def compact_names(names: Sequence[str]) -> str:
    """Names written compactly: leaves of one module once, then the
    numbered copies of a module (its first numeric name component) once:
    ``head.{weight,bias}, heads.{0-5}.{weight,bias}, embed.weight``."""
    groups: 'OrderedDict[str, List[str]]' = OrderedDict()
    for name in names:
        parent, _, leaf = name.rpartition('.')
        groups.setdefault(parent, []).append(leaf)
    copies: 'OrderedDict[Tuple[str, ...], List[str]]' = OrderedDict()
    for parent, leaves in groups.items():
        leaf = leaves[0] if len(leaves) == 1 else '{' + ','.join(leaves) + '}'
        parts = parent.split('.') if parent else []
        index = next((i for i, p in enumerate(parts) if p.isdigit()), None)
        if index is None:
            copies[(*parts, leaf)] = []
            continue
        template = (*parts[:index], '#', *parts[index + 1:], leaf)
        copies.setdefault(template, []).append(parts[index])
    out = []
    for template, numbers in copies.items():
        text = '.'.join(template)
        if numbers:
            text = text.replace('#', _number_set(numbers), 1)
        out.append(text)
    return ', '.join(out)


def _number_set(numbers: Sequence[str]) -> str:
    """``'3'``, ``'{0,2}'`` or ``'{0-5}'`` (consecutive, 3 or more)."""
    if len(numbers) == 1:
        return numbers[0]
    values = [int(n) for n in numbers]
    if len(values) >= 3 and values == list(
            range(values[0], values[0] + len(values))):
        return f'{{{values[0]}-{values[-1]}}}'
    return '{' + ','.join(numbers) + '}'
