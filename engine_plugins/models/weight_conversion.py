"""What the weight converters share: their error and their result's report.

A converter (:mod:`engine_plugins.models.yolo.ultralytics_weights`,
:mod:`engine_plugins.models.rtdetr.hf_weights`) renames another
framework's state dict into ours and sorts every key into a kind: the
*converted* ``(source key or keys, our key)`` pairs and lists of keys such
as *new* (ours, left at their initial values) and *dropped* (theirs, not
converted). :class:`KeyConversionResult` counts each kind per part of the
model, for the summary the CLI prints and the checkpoint's ``meta``.
"""
from collections import Counter
from typing import Any, ClassVar, Dict, List, Tuple

import torch


class WeightConversionError(ValueError):
    """Weights that do not convert: unmapped keys, shape mismatches, or a
    layout or setting the target model cannot express."""


def tensor_shape(tensor: torch.Tensor) -> Tuple[int, ...]:
    """The shape of ``tensor`` as a plain tuple, for messages."""
    return tuple(tensor.shape)


class KeyConversionResult:
    """Counts, summary and checkpoint ``meta`` of a converted state dict.

    A subclass is a dataclass with the fields ``state_dict``,
    ``converted``, ``source_info`` and one list of keys per name in
    :attr:`KEY_LISTS`; it sets the class attributes below, :meth:`_part`,
    and, where it has more to say, :meth:`_converted_note` and
    :meth:`_model_meta`.

    Attributes:
        CONVERTED_FROM: The ``converted_from`` entry of :meth:`meta`.
        KEY_LISTS: ``(field name, summary title)`` of each key list, in the
            order :meth:`counts`, :meth:`summary` and :meth:`meta` give
            them after the converted keys.
    """

    CONVERTED_FROM: ClassVar[str] = ''
    KEY_LISTS: ClassVar[Tuple[Tuple[str, str], ...]] = ()

    converted: List[Tuple[Any, str]]
    source_info: Dict[str, Any]

    @staticmethod
    def _part(key: str) -> str:
        """The part of the model ``key`` (ours or the source's) is counted
        under."""
        raise NotImplementedError

    def _converted_note(self) -> str:
        """Text after the converted count in :meth:`summary`."""
        return ''

    def _model_meta(self) -> Dict[str, Any]:
        """Entries of :meth:`meta` that describe the converted model."""
        return {}

    def counts(self) -> Dict[str, Dict[str, int]]:
        """Per kind, keys per part: ``{'converted': {'backbone': 162,
        ...}, 'new': ..., 'dropped': ...}``."""
        counts = dict(
            converted=dict(Counter(self._part(k) for _, k in self.converted)))
        for name, _ in self.KEY_LISTS:
            counts[name] = dict(
                Counter(self._part(k) for k in getattr(self, name)))
        return counts

    def summary(self) -> str:
        """Counts per part, as the CLI prints them."""
        titles = dict(converted='converted', **dict(self.KEY_LISTS))
        lines = []
        for kind, groups in self.counts().items():
            total = sum(groups.values())
            detail = ', '.join(f'{name} {n}' for name, n in groups.items())
            extra = self._converted_note() if kind == 'converted' else ''
            lines.append(f'{titles[kind]}: {total}{extra}' +
                         (f' ({detail})' if detail else ''))
        return '\n'.join(lines)

    def meta(self, source: str) -> Dict[str, Any]:
        """The checkpoint's ``meta``: plain types only, so the file loads
        with ``weights_only=True``."""
        meta = dict(
            converted_from=self.CONVERTED_FROM,
            source=source,
            **{
                f'source_{k}': v
                for k, v in self.source_info.items()
            },
            **self._model_meta(),
            counts=self.counts())
        for name, _ in self.KEY_LISTS:
            meta[f'{name}_keys'] = list(getattr(self, name))
        return meta
