"""YOLOv8's task-aligned assigner, batched over images and ground truths.

mmdet's ``TaskAlignedAssigner`` (TOOD) works per image on ``InstanceData``,
uses plain IoU and a different normalisation; YOLOv8 needs the batched
form below.
"""
from typing import NamedTuple

import torch
import torch.nn.functional as F

from engine_plugins.engine.sanity.health import HealthStat
from engine_plugins.registry import TASK_UTILS
from ..overlaps import bbox_ciou

# Published on every assignment; any loss that calls this assigner
# reports them.
POS_PER_GT = HealthStat(
    'health/tal_pos_per_gt',
    low=0.5,
    high=10.0,
    cause='box_format',
    targets_of=('loss_bbox', 'loss_dfl'),
    meaning='the gt boxes contain almost no anchor centres with a '
    'positive overlap: gts and anchors (or predicted boxes) are in '
    'different frames or units (pixels vs stride units, normalized vs '
    'pixel, boxes before the letterbox)')
UNMATCHED = HealthStat(
    'health/tal_unmatched_gt',
    low=0.0,
    high=0.5,
    cause='box_format',
    meaning='most gt boxes got no positive anchor at all: their centres '
    'lie where the anchors are not (gts and anchors in different frames '
    'or units: grid cells vs pixels, boxes outside the network input, '
    'boxes before the letterbox)')
SCORED = HealthStat(
    'health/tal_scored_anchors', low=1.0, targets_of='loss_cls')
POS_CIOU = HealthStat(
    'health/tal_pos_ciou',
    low=0.02,
    high=1.0,
    cause='box_format',
    meaning='predicted boxes barely overlap the gts they are assigned to: '
    'the decoded predictions and the gts are in different frames or units')


class TALTargets(NamedTuple):
    """Per-anchor targets, all ``(B, A, ...)``.

    Attributes:
        labels: ``(B, A)`` class of the assigned GT (0 for background;
            look at ``fg_mask``).
        bboxes: ``(B, A, 4)`` pixel xyxy of the assigned GT (zeros for
            background).
        scores: ``(B, A, C)`` soft targets: on the GT's class,
            ``align / max_align(gt) * max_iou(gt)``; zero elsewhere.
        fg_mask: ``(B, A)`` bool, anchors with a GT.
        gt_idx: ``(B, A)`` index of the assigned GT in the padded GT rows
            (0 for background).
    """
    labels: torch.Tensor
    bboxes: torch.Tensor
    scores: torch.Tensor
    fg_mask: torch.Tensor
    gt_idx: torch.Tensor


@TASK_UTILS.register_module()
class YOLOv8TaskAlignedAssigner:
    """Assign ground truths to anchors by ``score^alpha * CIoU^beta``.

    For each GT, the ``topk`` anchors (over all levels) whose centre lies
    strictly inside it and whose alignment metric is highest become
    positives. An anchor claimed by several GTs goes to the GT with the
    highest CIoU. Padded GT rows (``pad_mask`` False) are ignored.

    One deliberate difference from YOLOv8: a candidate whose metric is
    exactly 0 (CIoU clamped to 0) is never positive. YOLOv8 may pick such
    anchors when a GT has fewer than ``topk`` non-zero candidates, which
    ones depending on ``topk``'s tie order; their soft target is 0, so the
    losses are the same either way.

    Worked example: one GT ``(0, 0, 16, 16)`` of class 2 and anchors at
    ``(4, 4)``, ``(12, 12)`` and ``(20, 4)``. The third lies outside, so
    with ``topk >= 2`` the first two are positives; if their metrics are
    0.2 and 0.4 and the best CIoU among them is 0.8, their class-2 targets
    are ``0.2 / 0.4 * 0.8 = 0.4`` and ``0.8``.

    The full problem holds ``B x M x A`` metrics. When that exceeds
    ``max_elements`` (crowded batches, P2 levels), the assigner runs one
    image at a time with that image's GTs only: same result, bounded
    memory.

    Args:
        num_classes: Number of classes ``C``.
        topk: Positives per GT. Defaults to 10.
        alpha: Exponent of the classification score. Defaults to 0.5.
        beta: Exponent of the CIoU. Defaults to 6.0.
        eps: Numerical floor. Defaults to 1e-9.
        max_elements: ``B * M * A`` above which to go per image.

    Example:
        >>> assigner = TASK_UTILS.build(dict(
        ...     type='YOLOv8TaskAlignedAssigner', num_classes=80, topk=10,
        ...     alpha=0.5, beta=6.0))
    """

    def __init__(self,
                 num_classes: int,
                 topk: int = 10,
                 alpha: float = 0.5,
                 beta: float = 6.0,
                 eps: float = 1e-9,
                 max_elements: int = 2**25) -> None:
        self.num_classes = num_classes
        self.topk = topk
        self.alpha = alpha
        self.beta = beta
        self.eps = eps
        self.max_elements = max_elements

    @torch.no_grad()
    def assign(self, pred_scores: torch.Tensor, pred_bboxes: torch.Tensor,
               anchor_points: torch.Tensor, gt_labels: torch.Tensor,
               gt_bboxes: torch.Tensor, pad_mask: torch.Tensor) -> TALTargets:
        """Assign.

        Args:
            pred_scores: ``(B, A, C)`` sigmoid scores.
            pred_bboxes: ``(B, A, 4)`` decoded pixel xyxy boxes.
            anchor_points: ``(A, 2)`` anchor centres in pixels.
            gt_labels: ``(B, M)`` class ids (any value in padded rows).
            gt_bboxes: ``(B, M, 4)`` pixel xyxy.
            pad_mask: ``(B, M)`` bool, True for real GT rows.
        """
        batch, num_anchors = pred_scores.shape[:2]
        # Every anchor is a classification target (background included);
        # a host number: no sync.
        SCORED.publish(
            torch.full((), float(batch * num_anchors),
                       device=pred_scores.device))
        num_gts = gt_bboxes.shape[1]
        if num_gts == 0:
            return self._background(pred_scores, gt_bboxes)
        # All-padding batches need no special case (and no host sync): no
        # anchor is a candidate, so every output is background.
        if batch == 1 or batch * num_gts * num_anchors <= self.max_elements:
            return self._assign(pred_scores, pred_bboxes, anchor_points,
                                gt_labels, gt_bboxes, pad_mask)
        per_image = []
        for b in range(batch):
            keep = pad_mask[b]
            one = slice(b, b + 1)
            if not bool(keep.any()):
                per_image.append(
                    self._background(pred_scores[one], gt_bboxes[one]))
                continue
            out = self._assign(pred_scores[one], pred_bboxes[one],
                               anchor_points, gt_labels[one][:, keep],
                               gt_bboxes[one][:, keep], pad_mask[one][:, keep])
            # back to indices into the padded rows
            gt_idx = torch.where(out.fg_mask,
                                 keep.nonzero().flatten()[out.gt_idx], 0)
            per_image.append(out._replace(gt_idx=gt_idx))
        return TALTargets(*(torch.cat(parts) for parts in zip(*per_image)))

    def _background(self, pred_scores: torch.Tensor,
                    gt_bboxes: torch.Tensor) -> TALTargets:
        batch, num_anchors = pred_scores.shape[:2]
        zeros = pred_scores.new_zeros((batch, num_anchors), dtype=torch.long)
        return TALTargets(
            labels=zeros,
            bboxes=gt_bboxes.new_zeros((batch, num_anchors, 4)),
            scores=torch.zeros_like(pred_scores),
            fg_mask=zeros.bool(),
            gt_idx=zeros)

    def _assign(self, pred_scores, pred_bboxes, anchor_points, gt_labels,
                gt_bboxes, pad_mask) -> TALTargets:
        batch, num_anchors, _ = pred_scores.shape
        num_gts = gt_bboxes.shape[1]
        # (B, M, A): anchor centre strictly inside the GT, real GT rows only
        lt = anchor_points[None, None] - gt_bboxes[:, :, None, :2]
        rb = gt_bboxes[:, :, None, 2:] - anchor_points[None, None]
        candidate = (torch.cat([lt, rb], -1).amin(-1) > self.eps) & \
            pad_mask[:, :, None]

        # Alignment metric on candidates only (CIoU clamped at 0).
        overlaps = pred_bboxes.new_zeros((batch, num_gts, num_anchors))
        scores = torch.zeros_like(overlaps)
        b_idx, m_idx, a_idx = candidate.nonzero(as_tuple=True)
        overlaps[b_idx, m_idx, a_idx] = bbox_ciou(
            gt_bboxes[b_idx, m_idx],
            pred_bboxes[b_idx, a_idx]).clamp(min=0).to(overlaps.dtype)
        scores[b_idx, m_idx,
               a_idx] = pred_scores[b_idx, a_idx,
                                    gt_labels[b_idx,
                                              m_idx].long()].to(scores.dtype)
        align = scores.pow(self.alpha) * overlaps.pow(self.beta)

        # Top-k per GT over all anchors; candidates only.
        topk = min(self.topk, num_anchors)
        topk_idx = align.topk(topk, dim=-1).indices
        in_topk = torch.zeros_like(candidate).scatter_(-1, topk_idx, True)
        positive = in_topk & candidate & (align > 0)

        # An anchor claimed by several GTs goes to the GT it overlaps most.
        multi = positive.sum(1, keepdim=True) > 1  # (B, 1, A)
        best = F.one_hot(overlaps.argmax(1), num_gts).permute(0, 2, 1).bool()
        positive = torch.where(multi, best, positive)
        fg_mask = positive.any(1)
        gt_idx = positive.to(torch.uint8).argmax(1)  # (B, A)
        POS_PER_GT.publish(positive.sum(), count=pad_mask.sum())
        # The mean above hides a few gts that take every positive.
        UNMATCHED.publish((pad_mask & ~positive.any(-1)).sum(),
                          count=pad_mask.sum())
        POS_CIOU.publish((overlaps * positive).sum(), count=positive.sum())

        batch_idx = torch.arange(batch, device=gt_idx.device)[:, None]
        labels = gt_labels.long()[batch_idx, gt_idx].clamp(min=0)
        labels = torch.where(fg_mask, labels, 0)
        bboxes = torch.where(fg_mask[..., None], gt_bboxes[batch_idx, gt_idx],
                             0)
        gt_idx = torch.where(fg_mask, gt_idx, 0)

        # Soft targets: align / max_align(gt) * max_iou(gt), written into
        # the label's column (a scatter: no (B, A, C) one-hot temporaries).
        align = align * positive
        max_align = align.amax(-1, keepdim=True)
        max_iou = (overlaps * positive).amax(-1, keepdim=True)
        norm = (align * max_iou / (max_align + self.eps)).amax(1)  # (B, A)
        target = torch.zeros_like(pred_scores).scatter_(
            -1, labels[..., None],
            (norm * fg_mask).to(pred_scores.dtype)[..., None])
        return TALTargets(labels, bboxes, target, fg_mask, gt_idx)
