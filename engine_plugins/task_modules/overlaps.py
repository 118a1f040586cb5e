"""Box overlaps: CIoU in the YOLOv8 form, and pairwise IoU / GIoU.

mmdet's ``ciou_loss`` multiplies the aspect term by ``(iou > 0.5)``; YOLOv8
does not, and its assigner ranks anchors by this CIoU, so the two are not
interchangeable. The formula (Zheng et al., 2020) as YOLOv8 uses it::

    CIoU = IoU - rho^2 / c^2 - alpha * v
    v     = 4 / pi^2 * (atan(w2 / h2) - atan(w1 / h1))^2
    alpha = v / (v - IoU + 1)          (no gradient through alpha)

with ``rho`` the distance between the box centres and ``c`` the diagonal of
the smallest enclosing box.
"""
import math

import torch


def bbox_ciou(box1: torch.Tensor,
              box2: torch.Tensor,
              eps: float = 1e-7) -> torch.Tensor:
    """Element-wise CIoU of xyxy boxes ``(..., 4)``; broadcasts."""
    x1, y1, x2, y2 = box1.unbind(-1)
    u1, v1, u2, v2 = box2.unbind(-1)
    w1, h1 = x2 - x1, y2 - y1 + eps
    w2, h2 = u2 - u1, v2 - v1 + eps
    inter = ((torch.minimum(x2, u2) - torch.maximum(x1, u1)).clamp(min=0) *
             (torch.minimum(y2, v2) - torch.maximum(y1, v1)).clamp(min=0))
    union = w1 * h1 + w2 * h2 - inter + eps
    iou = inter / union
    cw = torch.maximum(x2, u2) - torch.minimum(x1, u1)
    ch = torch.maximum(y2, v2) - torch.minimum(y1, v1)
    c2 = cw**2 + ch**2 + eps
    rho2 = ((u1 + u2 - x1 - x2)**2 + (v1 + v2 - y1 - y2)**2) / 4
    v = (4 / math.pi**2) * (torch.atan(w2 / h2) - torch.atan(w1 / h1))**2
    with torch.no_grad():
        alpha = v / (v - iou + (1 + eps))
    return iou - (rho2 / c2 + v * alpha)


def pairwise_giou(boxes1: torch.Tensor,
                  boxes2: torch.Tensor,
                  mode: str = 'giou',
                  eps: float = 1e-6) -> torch.Tensor:
    """IoU or GIoU of every box of ``boxes1`` with every box of ``boxes2``.

    Bitwise equal to mmdet's ``bbox_overlaps(boxes1, boxes2, mode,
    is_aligned=False, eps)`` in float32 and float64: the same arithmetic
    in the same order. mmdet builds ``(..., n, m, 2)`` corner tensors from
    strided coordinates and a fresh temporary for every step; this works
    on contiguous x and y rows, in place: 2.2-3x faster on the Hungarian
    matcher's problem (batch 16 x 300 queries x 10-100 GTs, CPU, one
    thread).

    Args:
        boxes1: ``(..., n, 4)`` xyxy.
        boxes2: ``(..., m, 4)`` xyxy, same leading dims.
        mode: ``'iou'`` or ``'giou'``.
        eps: Floor of the union (and of the enclosing area).

    Returns:
        ``(..., n, m)``.
    """
    if mode not in ('iou', 'giou'):
        raise ValueError(f"mode must be 'iou' or 'giou', got {mode!r}")
    # Contiguous coordinate rows: broadcasting a strided row runs the
    # elementwise kernels without vectorization (measured ~2x slower).
    rows1 = boxes1.transpose(-1, -2).contiguous().unbind(-2)
    rows2 = boxes2.transpose(-1, -2).contiguous().unbind(-2)
    x1, y1, x2, y2 = (t[..., :, None] for t in rows1)
    u1, v1, u2, v2 = (t[..., None, :] for t in rows2)
    area1 = (boxes1[..., 2] - boxes1[..., 0]) * (
        boxes1[..., 3] - boxes1[..., 1])
    area2 = (boxes2[..., 2] - boxes2[..., 0]) * (
        boxes2[..., 3] - boxes2[..., 1])
    width = torch.minimum(x2, u2)
    width -= torch.maximum(x1, u1)
    height = torch.minimum(y2, v2)
    height -= torch.maximum(y1, v1)
    overlap = width.clamp_(min=0).mul_(height.clamp_(min=0))
    union = area1[..., None] + area2[..., None, :]
    union -= overlap
    floor = union.new_tensor([eps])
    union = torch.max(union, floor)
    ious = overlap.div_(union)
    if mode == 'iou':
        return ious
    width = torch.maximum(x2, u2)
    width -= torch.minimum(x1, u1)
    height = torch.maximum(y2, v2)
    height -= torch.minimum(y1, v1)
    enclose = torch.max(
        width.clamp_(min=0).mul_(height.clamp_(min=0)), floor)
    return ious.sub_(enclose.sub(union).div_(enclose))
