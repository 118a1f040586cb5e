"""RT-DETR's box convention, written once.

Datasets give pixel xyxy boxes in the network-input frame. RT-DETR's
decoder predicts normalized cxcywh: fractions of the padded input tensor
(``batch_input_shape``), which is the frame its anchors and deformable
sampling cover. The data preprocessor converts the gt boxes once with
:func:`pixel_xyxy_to_normalized_cxcywh`; inference maps predictions back
with :func:`normalized_cxcywh_to_pixel_xyxy`; the criterion checks its
targets with :func:`check_normalized_cxcywh`. Nothing else converts.
"""
from typing import Sequence

import torch
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy, bbox_xyxy_to_cxcywh

from engine_plugins.engine.sanity.preflight import TargetFormatError

# Accepted slack outside [0, 1]: float rounding of boxes touching the edge.
_TOL = 1e-4


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


def check_normalized_cxcywh(boxes: torch.Tensor, what: str) -> None:
    """Raise :class:`TargetFormatError` unless ``boxes`` are finite
    normalized cxcywh: every value in [0, 1] and the box inside the frame.

    Args:
        boxes: ``(N, 4)``.
        what: Names the boxes in the message, e.g. ``'gt_boxes of image
            3 (data/val/0001.jpg)'``.
    """
    if boxes.numel() == 0:
        return
    if boxes.dim() != 2 or boxes.shape[-1] != 4:
        raise TargetFormatError(
            f'{what}: expected (N, 4) normalized cxcywh boxes, got shape '
            f'{tuple(boxes.shape)}')
    boxes = boxes.detach().float()
    if not bool(torch.isfinite(boxes).all()):
        raise TargetFormatError(f'{what}: non-finite box values')
    xyxy = bbox_cxcywh_to_xyxy(boxes)
    bad = ((boxes < -_TOL) | (boxes > 1 + _TOL) | (xyxy < -_TOL) |
           (xyxy > 1 + _TOL)).any(-1)
    if bool(bad.any()):
        j = int(bad.nonzero()[0])
        hint = (' They look like pixel coordinates: the loss expects '
                'normalized cxcywh, which RTDETRDataPreprocessor produces '
                'from pixel xyxy (one conversion, in one place).'
                if float(boxes.max()) > 2 else
                ' A box outside the image: clip boxes in the data pipeline.')
        raise TargetFormatError(
            f'{what}, box {j}: {boxes[j].tolist()} is not normalized cxcywh '
            f'inside [0, 1].{hint}')
