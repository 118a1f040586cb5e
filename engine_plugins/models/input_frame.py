"""Mapping boxes from the network-input frame back to the original image."""
import torch


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
