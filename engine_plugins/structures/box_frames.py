"""Box frames and conventions, written once for data, models and checks.

* Datasets give **pixel xyxy** boxes in the network-input frame
  (``img_shape``): after resize and letterbox, before batch padding.
  :func:`check_pixel_boxes` checks that contract.
* RT-DETR works in **normalized cxcywh**: fractions of the padded input
  tensor (``batch_input_shape``), the frame its anchors and deformable
  sampling cover. Its data preprocessor converts once with
  :func:`pixel_xyxy_to_normalized_cxcywh`; inference maps back with
  :func:`normalized_cxcywh_to_pixel_xyxy`; :func:`check_normalized_cxcywh`
  checks the targets (also in the sanity engine's preflight).
* Predictions go back to the **original image** with
  :func:`boxes_to_original_image` (undo letterbox and resize, clip).

Box tensors are read with mmdet's ``get_box_tensor``, so ``HorizontalBoxes``
and plain tensors both work.
"""
from typing import Any, Mapping, Optional, Sequence, Tuple

import torch
from mmdet.structures.bbox import (bbox_cxcywh_to_xyxy, bbox_xyxy_to_cxcywh,
                                   get_box_tensor)

from engine_plugins.engine.sanity.errors import TargetFormatError

BOX_FORMATS = ('xyxy_pixel', 'cxcywh_normalized')
# Slack in pixels for boxes touching the border after float rounding.
_PIXEL_TOL = 1.0
# Slack outside [0, 1]: float rounding of boxes touching the edge.
NORMALIZED_TOL = 1e-4


def gt_labels_and_boxes(
        sample: Any) -> Optional[Tuple[torch.Tensor, torch.Tensor]]:
    """``(labels, boxes)`` of a data sample's ``gt_instances`` (boxes as a
    float tensor, detached), or None when it has none."""
    gt = getattr(sample, 'gt_instances', None)
    if gt is None or 'labels' not in gt or 'bboxes' not in gt or len(gt) == 0:
        return None
    boxes = torch.as_tensor(get_box_tensor(gt.bboxes))
    return torch.as_tensor(gt.labels), boxes.detach().float()


def boxes_to_original_image(boxes: torch.Tensor, meta: dict) -> torch.Tensor:
    """Undo letterbox padding (``pad_param``: top, bottom, left, right) and
    resize (``scale_factor``: w, h) of pixel xyxy ``boxes``, then clip to
    ``ori_shape``. Keys missing from ``meta`` are steps that did not
    happen."""
    pad = meta.get('pad_param')
    if pad is not None:
        boxes = boxes - boxes.new_tensor([pad[2], pad[0], pad[2], pad[0]])
    scale = meta.get('scale_factor')
    if scale is not None:
        boxes = boxes / boxes.new_tensor(scale).repeat(2)
    if 'ori_shape' in meta:
        h, w = meta['ori_shape'][:2]
        boxes = torch.stack([
            boxes[:, 0].clamp(0, w), boxes[:, 1].clamp(0, h),
            boxes[:, 2].clamp(0, w), boxes[:, 3].clamp(0, h)
        ], -1)
    return boxes


def _frame(hw: Sequence[int], like: torch.Tensor) -> torch.Tensor:
    h, w = hw[:2]
    return like.new_tensor([w, h, w, h])


def pixel_xyxy_to_normalized_cxcywh(boxes: torch.Tensor,
                                    hw: Sequence[int]) -> torch.Tensor:
    """``(N, 4)`` pixel xyxy in an ``(h, w)`` frame → normalized cxcywh."""
    return bbox_xyxy_to_cxcywh(boxes / _frame(hw, boxes))


def normalized_cxcywh_to_pixel_xyxy(boxes: torch.Tensor,
                                    hw: Sequence[int]) -> torch.Tensor:
    """Inverse of :func:`pixel_xyxy_to_normalized_cxcywh`."""
    return bbox_cxcywh_to_xyxy(boxes) * _frame(hw, boxes)


def _valid_as(boxes: torch.Tensor, h: float, w: float, fmt: str) -> bool:
    """Whether every box read as ``fmt`` lies inside an ``h`` x ``w``
    frame with positive size."""
    a, b, c, d = boxes.unbind(-1)
    if fmt == 'xywh':
        x1, y1, x2, y2 = a, b, a + c, b + d
    elif fmt == 'cxcywh':
        x1, y1, x2, y2 = a - c / 2, b - d / 2, a + c / 2, b + d / 2
    else:
        x1, y1, x2, y2 = a, b, c, d
    t = _PIXEL_TOL
    return bool(((x2 > x1) & (y2 > y1) & (x1 >= -t) & (y1 >= -t) &
                 (x2 <= w + t) & (y2 <= h + t)).all())


def _format_hint(boxes: torch.Tensor, h: float, w: float) -> str:
    fits = [f for f in ('xywh', 'cxcywh') if _valid_as(boxes, h, w, f)]
    if fits:
        return f': they read correctly as {" or ".join(fits)}'
    return ' (cxcywh or xywh?)'


def check_pixel_boxes(boxes: torch.Tensor, meta: Mapping[str, Any],
                      where: str) -> None:
    """Pixel xyxy boxes inside the network input ``meta['img_shape']``.

    Raises:
        TargetFormatError: non-finite, normalized-looking, inverted or
            outside boxes; the message guesses the format or frame.
    """
    if not bool(torch.isfinite(boxes).all()):
        raise TargetFormatError(f'{where}: non-finite gt boxes')
    shape = meta.get('img_shape', meta.get('batch_input_shape'))
    h, w = (shape[:2] if shape is not None else (None, None))
    if h is not None and max(h, w) > 2 and bool((boxes <= 1.0).all()):
        raise TargetFormatError(
            f'{where}: every gt box coordinate is <= 1 in a {h}x{w} '
            'image: the boxes look normalized, but the loss expects '
            'pixel xyxy')
    inverted = (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
    if bool(inverted.any()):
        j = int(inverted.nonzero()[0])
        hint = _format_hint(boxes, h, w) if h is not None else ''
        raise TargetFormatError(
            f'{where}, instance {j}: box {boxes[j].tolist()} has x2 < x1 '
            f'or y2 < y1: not xyxy{hint}')
    if h is None:
        return
    t = _PIXEL_TOL
    outside = ((boxes[:, 0] < -t) | (boxes[:, 1] < -t) | (boxes[:, 2] > w + t)
               | (boxes[:, 3] > h + t))
    if bool(outside.any()):
        j = int(outside.nonzero()[0])
        ori = meta.get('ori_shape')
        frame = ''
        if ori is not None and tuple(
                ori[:2]) != (h,
                             w) and bool((boxes[:, 2] <= ori[1] + t).all()
                                         & (boxes[:, 3] <= ori[0] + t).all()):
            frame = (f'; all boxes fit the original {ori[0]}x{ori[1]} '
                     'image: they were not resized/letterboxed with it')
        raise TargetFormatError(
            f'{where}, instance {j}: box {boxes[j].tolist()} lies '
            f'outside the {h}x{w} network input: boxes must be in '
            f'the frame after resize/letterbox{frame}')


def image_extent(meta: Mapping[str, Any]) -> Optional[Tuple[float, float]]:
    """The fraction (w, h) of the padded batch tensor covered by the image:
    normalized boxes cannot reach into the padding."""
    img, pad = meta.get('img_shape'), meta.get('batch_input_shape')
    if img is None or pad is None:
        return None
    return img[1] / pad[1], img[0] / pad[0]


def check_normalized_cxcywh(
        boxes: torch.Tensor,
        where: str,
        extent: Optional[Tuple[float, float]] = None) -> None:
    """Raise :class:`TargetFormatError` unless ``boxes`` ``(N, 4)`` are
    finite cxcywh normalized to [0, 1], lying inside the frame (and inside
    the ``extent`` ``(w, h)`` of the image in the padded frame, if given).
    One host sync when they are.

    Args:
        boxes: ``(N, 4)``.
        where: Names the boxes in the message (image file or index).
        extent: Fraction of the normalizing frame the image covers.
    """
    if boxes.numel() == 0:
        return
    if boxes.dim() != 2 or boxes.shape[-1] != 4:
        raise TargetFormatError(
            f'{where}: expected (N, 4) normalized cxcywh boxes, got shape '
            f'{tuple(boxes.shape)}')
    boxes = boxes.detach().float()
    xyxy = bbox_cxcywh_to_xyxy(boxes)
    values = torch.cat([boxes, xyxy], -1)
    bad = ~(torch.isfinite(values) & (values >= -NORMALIZED_TOL) &
            (values <= 1 + NORMALIZED_TOL)).all(-1)
    if not bool(bad.any()):
        if extent is not None and extent != (1.0, 1.0):
            _check_extent(boxes, xyxy, extent, where)
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
    as_xyxy = ((boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1]) &
               (boxes >= 0).all(-1) & (boxes <= 1).all(-1)).all()
    if bool(as_xyxy) and bool((xyxy[:, :2] < -NORMALIZED_TOL).any()):
        raise TargetFormatError(
            f'{where}, instance {j}: box {box} read as cxcywh reaches '
            'outside the image, but every box of the image reads as a '
            'valid normalized x1, y1, x2, y2: the boxes are xyxy, not '
            'cxcywh', 'box_format')
    raise TargetFormatError(
        f'{where}, instance {j}: box {box} is normalized cxcywh but reaches '
        'outside the image; clip boxes in the data pipeline')


def _check_extent(boxes: torch.Tensor, xyxy: torch.Tensor,
                  extent: Tuple[float, float], where: str) -> None:
    w, h = extent
    t = 0.01  # about a pixel at typical input sizes
    outside = (xyxy[:, 2] > w + t) | (xyxy[:, 3] > h + t)
    if not bool(outside.any()):
        return
    j = int(outside.nonzero()[0])
    raise TargetFormatError(
        f'{where}, instance {j}: box {boxes[j].tolist()} reaches into the '
        f'batch padding (the image covers {w:.3g} x {h:.3g} of the padded '
        'input): the boxes were normalized by the image size (img_shape), '
        'not by the padded batch shape (batch_input_shape) the model '
        'predicts in')
