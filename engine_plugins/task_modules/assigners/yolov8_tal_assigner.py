"""YOLOv8's task-aligned assigner, batched over images and ground truths.

mmdet's ``TaskAlignedAssigner`` (TOOD) works per image on ``InstanceData``,
uses plain IoU and a different normalisation; YOLOv8 needs the batched
form below.
"""
from typing import NamedTuple, Tuple

import torch

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
    positives. An anchor claimed by several GTs goes to the GT of its image
    with the highest CIoU (the lowest GT row on a tie). Padded GT rows
    (``pad_mask`` False) are ignored.

    Two deliberate differences from YOLOv8's dense implementation, neither
    of which changes a loss:

    - a candidate whose metric is exactly 0 (CIoU clamped to 0) is never
      positive. YOLOv8 may pick such anchors when a GT has fewer than
      ``topk`` non-zero candidates, which ones depending on ``topk``'s tie
      order; their soft target is 0.
    - equal metrics at the ``topk``-th place are broken toward the lower
      anchor index (``torch.topk`` leaves the order of ties unspecified).

    Worked example: one GT ``(0, 0, 16, 16)`` of class 2 and anchors at
    ``(4, 4)``, ``(12, 12)`` and ``(20, 4)``. The third lies outside, so
    with ``topk >= 2`` the first two are positives; if their metrics are
    0.2 and 0.4 and the best CIoU among them is 0.8, their class-2 targets
    are ``0.2 / 0.4 * 0.8 = 0.4`` and ``0.8``.

    Only (GT, anchor) pairs with the anchor centre inside the GT are ever
    formed: time and memory grow with the number of such pairs, not with
    ``B x M x A``. The pairs are found through x-buckets of anchors sorted
    by y (a binary search per GT and bucket), so any anchor layout works.

    Args:
        num_classes: Number of classes ``C``.
        topk: Positives per GT. Defaults to 10.
        alpha: Exponent of the classification score. Defaults to 0.5.
        beta: Exponent of the CIoU. Defaults to 6.0.
        eps: Margin of the strict inside test; must be >= 0. Defaults to
            1e-9.

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
                 eps: float = 1e-9) -> None:
        if eps < 0:
            # The bucket search relies on "inside" implying x1 < x < x2.
            raise ValueError(f'eps must be >= 0, got {eps}')
        self.num_classes = num_classes
        self.topk = topk
        self.alpha = alpha
        self.beta = beta
        self.eps = eps

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

        Returns:
            TALTargets. With no GT row at all, ``scores`` is a zero tensor
            expanded to ``(B, A, C)`` (no memory); it is read-only.
        """
        batch, num_anchors = pred_scores.shape[:2]
        # Every anchor is a classification target (background included);
        # a host number: no sync.
        SCORED.publish(
            torch.full((), float(batch * num_anchors),
                       device=pred_scores.device))
        if gt_bboxes.shape[1] == 0:
            return self._background(pred_scores, gt_bboxes)
        return self._assign(pred_scores, pred_bboxes, anchor_points,
                            gt_labels, gt_bboxes, pad_mask)

    def _background(self, pred_scores: torch.Tensor,
                    gt_bboxes: torch.Tensor) -> TALTargets:
        batch, num_anchors = pred_scores.shape[:2]
        zeros = pred_scores.new_zeros((batch, num_anchors), dtype=torch.long)
        return TALTargets(
            labels=zeros,
            bboxes=gt_bboxes.new_zeros((batch, num_anchors, 4)),
            scores=pred_scores.new_zeros(()).expand_as(pred_scores),
            fg_mask=zeros.bool(),
            gt_idx=zeros)

    def _assign(self, pred_scores, pred_bboxes, anchor_points, gt_labels,
                gt_bboxes, pad_mask) -> TALTargets:
        batch, num_anchors, _ = pred_scores.shape
        device = pred_scores.device
        img_of_gt, row_of_gt = pad_mask.nonzero(as_tuple=True)  # (G,)
        boxes = gt_bboxes[img_of_gt, row_of_gt]
        num_real = len(boxes)
        gt, anchor = candidate_pairs(anchor_points, boxes, self.eps)
        img = img_of_gt[gt]

        # Alignment metric of every candidate pair (CIoU clamped at 0).
        dtype = pred_bboxes.dtype
        overlaps = bbox_ciou(boxes[gt], pred_bboxes[img, anchor]).clamp(
            min=0).to(dtype)
        labels_of_gt = gt_labels[img_of_gt, row_of_gt].long()
        scores = pred_scores[img, anchor, labels_of_gt[gt]].to(dtype)
        align = scores.pow(self.alpha) * overlaps.pow(self.beta)

        # Top-k per GT: sort the pairs by (GT, metric descending, anchor).
        order = (gt * num_anchors + anchor).argsort()
        order = order[_descending_within(align[order], gt[order])]
        gt_sorted = gt[order]
        starts = torch.cumsum(
            torch.bincount(gt_sorted, minlength=num_real), 0) - \
            torch.bincount(gt_sorted, minlength=num_real)
        rank = torch.arange(len(order), device=device) - starts[gt_sorted]
        top = torch.zeros_like(gt, dtype=torch.bool)
        top[order] = rank < self.topk
        positive = top & (align > 0)

        # An anchor claimed by several GTs goes to the GT of its image with
        # the highest CIoU among all its candidate pairs, claimant or not
        # (YOLOv8's argmax over every GT row), the lowest row on a tie.
        slot = img * num_anchors + anchor  # (image, anchor) of each pair
        num_slots = batch * num_anchors
        claims = torch.zeros(num_slots, dtype=torch.long, device=device)
        claims.index_add_(0, slot[positive],
                          torch.ones_like(slot[positive]))
        contested = claims[slot] > 1
        best_overlap = overlaps.new_zeros(num_slots).scatter_reduce(
            0, slot, overlaps, 'amax')
        is_best = overlaps == best_overlap[slot]
        best_gt = torch.full((num_slots, ), num_real, device=device)
        best_gt.scatter_reduce_(0, slot[is_best], gt[is_best], 'amin')
        positive = torch.where(contested, gt == best_gt[slot], positive)

        pos_gt, pos_slot = gt[positive], slot[positive]
        pos_align, pos_overlap = align[positive], overlaps[positive]
        POS_PER_GT.publish(
            positive.sum(), count=torch.full((), num_real, device=device))
        # The mean above hides a few gts that take every positive.
        matched = torch.zeros(num_real, dtype=torch.bool, device=device)
        matched[pos_gt] = True
        UNMATCHED.publish((~matched).sum(),
                          count=torch.full((), num_real, device=device))
        POS_CIOU.publish(pos_overlap.sum(), count=positive.sum())

        # Soft targets: align / max_align(gt) * max_iou(gt).
        max_align = align.new_zeros(num_real).scatter_reduce(
            0, pos_gt, pos_align, 'amax')
        max_iou = overlaps.new_zeros(num_real).scatter_reduce(
            0, pos_gt, pos_overlap, 'amax')
        norm = pos_align * max_iou[pos_gt] / (max_align[pos_gt] + self.eps)

        fg_mask = torch.zeros(num_slots, dtype=torch.bool, device=device)
        fg_mask[pos_slot] = True
        gt_idx = torch.zeros(num_slots, dtype=torch.long, device=device)
        gt_idx[pos_slot] = row_of_gt[pos_gt]
        labels = torch.zeros_like(gt_idx)
        labels[pos_slot] = labels_of_gt[pos_gt].clamp(min=0)
        bboxes = gt_bboxes.new_zeros((num_slots, 4))
        bboxes[pos_slot] = boxes[pos_gt]
        # Written into the label's column: no (B, A, C) one-hot.
        target = pred_scores.new_zeros(num_slots, pred_scores.shape[-1])
        target[pos_slot, labels[pos_slot]] = norm.to(target.dtype)
        shape = (batch, num_anchors)
        return TALTargets(
            labels.view(shape), bboxes.view(*shape, 4),
            target.view_as(pred_scores), fg_mask.view(shape),
            gt_idx.view(shape))


def _descending_within(values: torch.Tensor,
                       groups: torch.Tensor) -> torch.Tensor:
    """Stable permutation that orders ``values`` descending within each
    group, groups ascending (``groups`` must already be ascending)."""
    if values.dtype in (torch.float16, torch.bfloat16, torch.float32):
        # A non-negative float's bit pattern orders like its value: one
        # integer sort on (group, -bits) instead of two float sorts.
        bits = values.float().clamp(min=0).view(torch.int32).long()
        key = groups * 2**31 + (2**31 - 1 - bits)
        return key.sort(stable=True).indices
    order = values.sort(descending=True, stable=True).indices
    return order[groups[order].sort(stable=True).indices]


def candidate_pairs(anchor_points: torch.Tensor, boxes: torch.Tensor,
                    eps: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """All ``(box, anchor)`` pairs with the anchor centre strictly inside
    the box: ``min(x - x1, y - y1, x2 - x, y2 - y) > eps``.

    Anchors are split into x-buckets, each sorted by y. For every box and
    every bucket its x-range touches, a binary search gives the run of
    anchors with ``y1 < y < y2``; the exact test then filters that run.
    The work is about the number of anchors inside the boxes, plus one
    bucket width of margin, instead of boxes x anchors.

    Args:
        anchor_points: ``(A, 2)`` anchor centres.
        boxes: ``(G, 4)`` xyxy.
        eps: Inside margin, >= 0.

    Returns:
        ``(box_index, anchor_index)``, each ``(N,)`` long, box-major.
    """
    device = anchor_points.device
    num_anchors, num_boxes = len(anchor_points), len(boxes)
    empty = torch.zeros(0, dtype=torch.long, device=device)
    if num_anchors == 0 or num_boxes == 0:
        return empty, empty
    ax, ay = anchor_points.unbind(-1)
    num_buckets = max(1, min(128, int(num_anchors**0.5)))
    lo_x, hi_x = ax.min(), ax.max()
    width = (hi_x - lo_x).clamp(min=1e-6) / num_buckets
    bucket = ((ax - lo_x) / width).long().clamp(0, num_buckets - 1)
    # anchors by (bucket, y), in a (buckets, L) table padded with +inf
    by_y = ay.argsort(stable=True)
    order = by_y[bucket[by_y].argsort(stable=True)]
    sizes = torch.bincount(bucket, minlength=num_buckets)
    first = torch.cumsum(sizes, 0) - sizes
    rank = torch.arange(num_anchors, device=device) - first[bucket[order]]
    length = int(sizes.max())
    table_y = ay.new_full((num_buckets, length), float('inf'))
    table_y[bucket[order], rank] = ay[order]
    table_a = torch.zeros((num_buckets, length), dtype=torch.long,
                          device=device)
    table_a[bucket[order], rank] = order
    bucket_min = ax.new_full((num_buckets, ), float('inf')).scatter_reduce(
        0, bucket, ax, 'amin')
    bucket_max = ax.new_full((num_buckets, ), -float('inf')).scatter_reduce(
        0, bucket, ax, 'amax')

    # "inside" implies x1 < x < x2 and y1 < y < y2 (eps >= 0), so these
    # runs hold every candidate; the exact test below removes the rest.
    # (Inclusive bounds: rounding the boxes to the anchors' dtype may
    # move them onto an anchor.)
    x1, y1, x2, y2 = boxes.unbind(-1)
    lo = torch.searchsorted(
        table_y, y1.to(ay.dtype)[None].expand(num_buckets, -1).contiguous())
    hi = torch.searchsorted(
        table_y,
        y2.to(ay.dtype)[None].expand(num_buckets, -1).contiguous(),
        right=True)
    touches = (bucket_max[:, None] >= x1) & (bucket_min[:, None] <= x2)
    counts = torch.where(touches, (hi - lo).clamp(min=0), 0).T.reshape(-1)
    total = int(counts.sum())
    if total == 0:
        return empty, empty
    run = torch.repeat_interleave(
        torch.arange(len(counts), device=device), counts, output_size=total)
    offset = torch.arange(total, device=device) - \
        (torch.cumsum(counts, 0) - counts)[run]
    box_idx = run // num_buckets
    bucket_idx = run % num_buckets
    anchor_idx = table_a[bucket_idx, lo.T.reshape(-1)[run] + offset]
    # The exact test, with the same arithmetic as a dense one.
    px, py = ax[anchor_idx], ay[anchor_idx]
    inside = ((px - x1[box_idx] > eps) & (py - y1[box_idx] > eps) &
              (x2[box_idx] - px > eps) & (y2[box_idx] - py > eps))
    return box_idx[inside], anchor_idx[inside]
