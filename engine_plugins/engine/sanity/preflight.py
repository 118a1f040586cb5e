"""First-iteration checks of what reaches the model and what leaves it.

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
"""
import math
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import torch
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy

from .errors import TrainingSanityError

BOX_FORMATS = ('xyxy_pixel', 'cxcywh_normalized')


class BatchContractError(TrainingSanityError):
    """A key the model requires is missing or empty."""


class TargetFormatError(TrainingSanityError):
    """Detection targets break the model's label or box contract."""


class LossRangeError(TrainingSanityError):
    """A loss term starts at a clamp limit or far outside its range."""


def check_batch_contract(data: Mapping[str, Any], required: Sequence[str],
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


def _describe(sample: Any, index: int) -> str:
    path = sample.metainfo.get('img_path') if hasattr(sample,
                                                      'metainfo') else None
    return f'{path}' if path else f'batch item {index}'


def check_detection_targets(data_samples: Sequence[Any], num_classes: int,
                            box_format: str) -> None:
    """Labels in ``[0, num_classes)`` and boxes in ``box_format``.

    Raises:
        TargetFormatError: names the image file (``img_path``) and the
            instance index.
    """
    if box_format not in BOX_FORMATS:
        raise ValueError(
            f'box_format must be one of {BOX_FORMATS}, got {box_format!r}')
    for i, sample in enumerate(data_samples):
        gt = getattr(sample, 'gt_instances', None)
        if gt is None or len(gt) == 0:
            continue
        where = _describe(sample, i)
        labels = gt.labels
        bad = ((labels < 0) | (labels >= num_classes)).nonzero().flatten()
        if bad.numel():
            j = int(bad[0])
            value = int(labels[j])
            note = (' (== num_classes: background must be left to the loss, '
                    'not encoded as a class index)'
                    if value == num_classes else '')
            raise TargetFormatError(
                f'{where}, instance {j}: label {value} is outside '
                f'[0, {num_classes}){note}')
        boxes = torch.as_tensor(getattr(gt.bboxes, 'tensor', gt.bboxes))
        boxes = boxes.detach().float()
        if not bool(torch.isfinite(boxes).all()):
            raise TargetFormatError(f'{where}: non-finite gt boxes')
        meta = sample.metainfo
        h, w = meta.get('img_shape', meta.get('batch_input_shape',
                                              (None, None)))[:2]
        if box_format == 'cxcywh_normalized':
            check_normalized_cxcywh(boxes, where)
            continue
        if h is not None and max(h, w) > 2 and bool((boxes <= 1.0).all()):
            raise TargetFormatError(
                f'{where}: every gt box coordinate is <= 1 in a {h}x{w} '
                'image: the boxes look normalized, but the loss expects '
                'pixel xyxy')
        inverted = (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
        if bool(inverted.any()):
            j = int(inverted.nonzero()[0])
            raise TargetFormatError(
                f'{where}, instance {j}: box {boxes[j].tolist()} has x2 < x1 '
                'or y2 < y1: not xyxy (cxcywh or xywh?)')
        if h is not None:
            tol = 1.0
            outside = ((boxes[:, 0] < -tol) | (boxes[:, 1] < -tol) |
                       (boxes[:, 2] > w + tol) | (boxes[:, 3] > h + tol))
            if bool(outside.any()):
                j = int(outside.nonzero()[0])
                raise TargetFormatError(
                    f'{where}, instance {j}: box {boxes[j].tolist()} lies '
                    f'outside the {h}x{w} network input: boxes must be in '
                    'the frame after resize/letterbox')


# Slack outside [0, 1]: float rounding of boxes touching the edge.
_NORMALIZED_TOL = 1e-4


def check_normalized_cxcywh(boxes: torch.Tensor, where: str) -> None:
    """Raise :class:`TargetFormatError` unless ``boxes`` ``(N, 4)`` are
    finite cxcywh normalized to [0, 1], lying inside the frame. One host
    sync when they are.

    Args:
        boxes: ``(N, 4)``.
        where: Names the boxes in the message (image file or index).
    """
    if boxes.numel() == 0:
        return
    if boxes.dim() != 2 or boxes.shape[-1] != 4:
        raise TargetFormatError(
            f'{where}: expected (N, 4) normalized cxcywh boxes, got shape '
            f'{tuple(boxes.shape)}')
    boxes = boxes.detach().float()
    values = torch.cat([boxes, bbox_cxcywh_to_xyxy(boxes)], -1)
    bad = ~(torch.isfinite(values) & (values >= -_NORMALIZED_TOL) &
            (values <= 1 + _NORMALIZED_TOL)).all(-1)
    if not bool(bad.any()):
        return
    j = int(bad.nonzero()[0])
    box = boxes[j].tolist()
    if not bool(torch.isfinite(boxes[j]).all()):
        raise TargetFormatError(f'{where}, instance {j}: non-finite box {box}')
    if float(boxes[j].max()) > 2:
        raise TargetFormatError(
            f'{where}, instance {j}: box {box} is not normalized cxcywh in '
            '[0, 1]: it looks like pixel coordinates. The loss expects '
            'normalized boxes; convert once in the data preprocessor')
    raise TargetFormatError(
        f'{where}, instance {j}: box {box} is normalized cxcywh but reaches '
        'outside the image; clip boxes in the data pipeline')


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
        'metainfo=dict(classes=...)')


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
        if lo_hi is not None and not (lo_hi[0] / far <= v <= lo_hi[1] * far):
            far_out[name] = (f'{name} = {v:.4g} starts far outside its '
                             f'expected range {tuple(lo_hi)}')
    return far_out
