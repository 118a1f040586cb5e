"""RT-DETR's box convention, written once.

Datasets give pixel xyxy boxes in the network-input frame. RT-DETR's
decoder predicts normalized cxcywh: fractions of the padded input tensor
(``batch_input_shape``), which is the frame its anchors and deformable
sampling cover. The data preprocessor converts the gt boxes once with
:func:`pixel_xyxy_to_normalized_cxcywh`; inference maps predictions back
with :func:`normalized_cxcywh_to_pixel_xyxy`; the criterion checks its
targets with :func:`check_normalized_cxcywh` (the sanity engine's, which
``PreflightHook`` also uses). Nothing else converts.
"""
from typing import Sequence

import torch
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy, bbox_xyxy_to_cxcywh

# The range check is the sanity engine's, shared with PreflightHook.
from engine_plugins.engine.sanity.preflight import \
    check_normalized_cxcywh  # noqa: F401


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
