"""Checks of what reaches the model: the batch contract, the target
contract the model declares, plus the loss start values.

A model opts in by declaring any of these attributes (all optional):

* ``required_inputs``: keys its ``forward`` needs from the preprocessed
  batch, e.g. ``('input_ids', 'label_ids', 'label_audio_ids')``;
  ``optional_inputs``: keys it may read. Any other key is reported as
  produced-but-unused.
* ``box_format``: the box convention its loss expects for
  ``data_samples[i].gt_instances.bboxes``: ``'xyxy_pixel'`` or
  ``'cxcywh_normalized'``; ``num_classes`` bounds the labels.
* ``expected_loss_ranges``: ``{'loss_dfl': (lo, hi)}``, the range each
  term should start in; ``loss_clamp_limits``: ``{'loss_dfl': 10.0}``,
  values a term saturates at when its inputs are out of range.

The target contracts themselves (detection: pixel xyxy in the network-input
frame, normalized cxcywh) are declared by the data contracts in
``engine_plugins.structures`` and looked up by name; the dataset side of a
detection batch is checked on the CPU, before the preprocessor.
"""
import math
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import torch

# LossRangeError is imported from here by callers of check_loss_start.
from .errors import LossRangeError  # noqa: F401
from .errors import BatchContractError, TargetFormatError
# Callers import describe_sample from here.
from .samples import describe_sample  # noqa: F401
from .target_contracts import target_contract


def check_detection_targets(data_samples: Sequence[Any], num_classes: int,
                            box_format: str) -> None:
    """The target contract ``box_format`` (declared by the data contracts
    and registered with :mod:`.target_contracts`) on ``data_samples``."""
    target_contract(box_format)(data_samples, num_classes)


def check_batch_contract(data: Mapping[str, Any],
                         required: Sequence[str],
                         optional: Sequence[str] = ()) -> Tuple[str, ...]:
    """Raise if a required key is missing or empty; return unused keys."""
    missing = [k for k in required if data.get(k) is None]
    if missing:
        raise BatchContractError(
            f'the model requires batch keys {missing} but the batch has '
            f'only {sorted(data)}: the data pipeline, collate function or a '
            'key filter dropped them before the model')
    empty = [
        f'{k} {tuple(data[k].shape)}' for k in required
        if isinstance(data[k], torch.Tensor) and data[k].numel() == 0
    ]
    if empty:
        raise BatchContractError(
            f'required batch keys are empty: {", ".join(empty)}')
    known = set(required) | set(optional)
    return tuple(k for k in data if k not in known)


def check_value_ranges(data: Mapping[str, Any],
                       ranges: Mapping[str, Sequence[int]]) -> None:
    """Integer batch entries inside the ranges a model declares:
    ``{key: (low, high)}`` or ``{key: (low, high, ignore_index)}``, values
    in ``[low, high)`` or equal to the ignore index. CPU tensors only (a
    device tensor would cost a sync).

    Raises:
        TargetFormatError: names the key, the value and its position
            (cause ``label_range``).
    """
    for key, spec in ranges.items():
        value = data.get(key)
        if not isinstance(value, torch.Tensor) or value.numel() == 0 \
                or value.is_cuda or value.is_floating_point():
            continue
        low, high = spec[0], spec[1]
        ignore = spec[2] if len(spec) > 2 else None
        # Fast path on every batch: the extremes, ignore entries read as low.
        kept = value if ignore is None else torch.where(
            value == ignore, low, value)
        least, most = torch.aminmax(kept)
        if int(least) >= low and int(most) < high:
            continue
        bad = (value < low) | (value >= high)
        if ignore is not None:
            bad &= value != ignore
        if not bool(bad.any()):
            continue
        where = tuple(int(i) for i in bad.nonzero()[0])
        v = int(value[where])
        allowed = f'[{low}, {high})' + (
            f' or the ignore index {ignore}' if ignore is not None else '')
        hint = (f' (an ignore label other than {ignore}?)'
                if ignore is not None and v < 0 else '')
        raise TargetFormatError(
            f'batch key {key!r} holds {v} at index {list(where)}, outside '
            f'{allowed}{hint}: the loss would index out of range or train '
            'on a wrong target', 'label_range')


def dataset_classes(dataset: Any) -> Optional[Sequence[str]]:
    """``metainfo['classes']`` of a dataset, looking through wrappers
    (``FirstSamplesDataset``, ``RepeatDataset``, ...); None if absent."""
    while dataset is not None:
        classes = (getattr(dataset, 'metainfo', None) or {}).get('classes')
        if classes:
            return tuple(classes)
        dataset = getattr(dataset, 'dataset', None)
    return None


def check_dataset_classes(num_classes: int, dataset: Any, split: str) -> None:
    """The model's class count equals the dataset's.

    A model with more classes predicts ids the evaluator cannot map (mmdet's
    ``CocoMetric`` fails with an ``IndexError`` at the first validation);
    one with fewer gets labels it has no output for.

    Raises:
        TargetFormatError: the counts differ.
    """
    classes = dataset_classes(dataset)
    if classes is None or len(classes) == num_classes:
        return
    shown = ', '.join(repr(c) for c in classes[:5])
    more = f', ... ({len(classes)} in all)' if len(classes) > 5 else ''
    raise TargetFormatError(
        f'the model has num_classes={num_classes} but the {split} dataset '
        f'({type(dataset).__name__}) has {len(classes)} classes ({shown}'
        f'{more}); set the model\'s num_classes to {len(classes)} (for '
        'PSALM YOLO: model.fusion.num_classes), or the dataset\'s '
        'metainfo=dict(classes=...)', 'class_count')


def check_loss_start(losses: Mapping[str, Any],
                     ranges: Optional[Mapping[str, Tuple[float,
                                                         float]]] = None,
                     clamps: Optional[Mapping[str, float]] = None,
                     far: float = 10.0) -> Dict[str, str]:
    """Raise for terms at a clamp limit; return terms far out of range.

    "Far" means below ``lo / far`` or above ``hi * far``.
    """
    far_out = {}
    for name, value in losses.items():
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            continue
        v = float(value.detach())
        limit = (clamps or {}).get(name)
        if limit is not None and math.isclose(
                v, limit, rel_tol=1e-3, abs_tol=1e-4):
            lo_hi = (ranges or {}).get(name)
            expect = f'; it should start near {lo_hi}' if lo_hi else ''
            raise LossRangeError(
                f'{name} = {v:.4g} sits at its clamp limit {limit:g} on the '
                f'first iteration{expect}. Its targets are outside the '
                "range the loss can represent: check their coordinate "
                'system (e.g. DFL targets must be anchor-to-edge distances '
                'in stride units, not absolute coordinates)')
        lo_hi = (ranges or {}).get(name)
        # An exact 0 is a term without targets or weight, which the
        # zero-term check tells apart over the first iterations.
        if lo_hi is not None and v != 0 and not (lo_hi[0] / far <= v <=
                                                 lo_hi[1] * far):
            far_out[name] = (f'{name} = {v:.4g} starts far outside its '
                             f'expected range {tuple(lo_hi)}')
    return far_out
