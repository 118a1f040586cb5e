"""Complete IoU in the YOLOv8 form.

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
