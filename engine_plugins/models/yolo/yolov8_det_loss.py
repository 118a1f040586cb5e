"""YOLOv8's detection loss over all anchors: BCE on soft targets, CIoU and
DFL on positives."""
from typing import Dict, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.models.losses.gfocal_loss import distribution_focal_loss

from engine_plugins.engine.fp32_region import fp32_region
from engine_plugins.registry import MODELS, TASK_UTILS
from engine_plugins.task_modules import DFLBoxCoder, bbox_ciou


@MODELS.register_module()
class YOLOv8DetLoss(nn.Module):
    """Assign with :class:`YOLOv8TaskAlignedAssigner`, then

    * ``loss_cls``: BCE over all anchors x classes against the soft targets;
    * ``loss_bbox``: ``1 - CIoU`` on positives, weighted by target score;
    * ``loss_dfl``: DFL (mmdet's) on positives, mean over the 4 sides,
      weighted by target score;

    each divided by ``max(sum of target scores, 1)`` and multiplied by its
    gain. Assignment and losses run in an FP32 loss region: under AMP the
    head's half-precision outputs are widened before any of it. Boxes and
    DFL targets are in stride units (pixels / stride); the assigner sees
    pixels.
    Without positives the box terms are an exact 0 that stays connected to
    the graph.

    Args:
        num_classes: Number of classes.
        reg_max: DFL bins per side. Defaults to 16.
        assigner: Assigner config.
        cls_weight, box_weight, dfl_weight: Gains, 0.5 / 7.5 / 1.5.

    Example:
        >>> loss = MODELS.build(dict(type='YOLOv8DetLoss', num_classes=80))
        >>> losses = loss(cls_logits, pred_dist, points, strides,
        ...               gt_labels, gt_bboxes, pad_mask)
    """

    def __init__(self,
                 num_classes: int,
                 reg_max: int = 16,
                 assigner: Optional[dict] = None,
                 cls_weight: float = 0.5,
                 box_weight: float = 7.5,
                 dfl_weight: float = 1.5) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.coder = DFLBoxCoder(reg_max=reg_max)
        self.assigner = TASK_UTILS.build(
            assigner or dict(type='YOLOv8TaskAlignedAssigner'),
            default_args=dict(num_classes=num_classes))
        self.cls_weight = cls_weight
        self.box_weight = box_weight
        self.dfl_weight = dfl_weight

    @fp32_region
    def forward(self, cls_logits: torch.Tensor, pred_dist: torch.Tensor,
                anchor_points: torch.Tensor, strides: torch.Tensor,
                gt_labels: torch.Tensor, gt_bboxes: torch.Tensor,
                pad_mask: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Compute the losses.

        Args:
            cls_logits: ``(B, A, C)``.
            pred_dist: ``(B, A, 4 * reg_max)``, side-major.
            anchor_points: ``(A, 2)`` cell centres in grid units.
            strides: ``(A, 1)`` stride of each anchor's level.
            gt_labels: ``(B, M)``; gt_bboxes: ``(B, M, 4)`` pixel xyxy;
            pad_mask: ``(B, M)`` True for real GT rows.
        """
        pred_bboxes = self.coder.decode(anchor_points, pred_dist)  # grid
        targets = self.assigner.assign(
            cls_logits.detach().sigmoid(),
            (pred_bboxes.detach() * strides).to(gt_bboxes.dtype),
            anchor_points * strides, gt_labels, gt_bboxes, pad_mask)
        # a tensor clamp, not max(): no host sync
        score_sum = targets.scores.sum().clamp(min=1)
        loss_cls = F.binary_cross_entropy_with_logits(
            cls_logits, targets.scores.to(cls_logits.dtype),
            reduction='sum') / score_sum

        fg = targets.fg_mask
        weight = targets.scores.sum(-1)[fg]
        target_bboxes = (targets.bboxes / strides)[fg]  # stride units
        ciou = bbox_ciou(pred_bboxes[fg], target_bboxes)
        loss_bbox = ((1.0 - ciou) * weight).sum() / score_sum
        points = anchor_points.expand_as(pred_bboxes[..., :2])[fg]
        ltrb = self.coder.encode(points, target_bboxes)
        dfl = distribution_focal_loss(
            pred_dist[fg].reshape(-1, self.coder.reg_max),
            ltrb.reshape(-1),
            reduction='none').view(-1, 4).mean(-1)
        loss_dfl = (dfl * weight).sum() / score_sum
        return dict(
            loss_cls=loss_cls * self.cls_weight,
            loss_bbox=loss_bbox * self.box_weight,
            loss_dfl=loss_dfl * self.dfl_weight)
