"""A straightforward dense version of YOLOv8's task-aligned assignment:
every ``(image, GT, anchor)`` triple at once, no sparsity and no memory
bound. It is what the algorithm's description reads like, and it is the
baseline ``benchmarks/bench_tal.py`` times the real assigner against."""
import torch
import torch.nn.functional as F

from engine_plugins.task_modules import bbox_ciou


def dense_reference_tal(pred_scores, pred_bboxes, anchor_points, gt_labels,
                        gt_bboxes, pad_mask, num_classes, topk=10, alpha=0.5,
                        beta=6.0, eps=1e-9):
    """Same arguments and outputs as ``YOLOv8TaskAlignedAssigner.assign``
    (as a tuple: labels, bboxes, scores, fg_mask, gt_idx)."""
    batch, num_anchors, _ = pred_scores.shape
    num_gts = gt_bboxes.shape[1]
    # (B, M, A) CIoU of every GT with every predicted box.
    ious = bbox_ciou(
        gt_bboxes[:, :, None, :].expand(-1, -1, num_anchors, -1),
        pred_bboxes[:, None, :, :].expand(-1, num_gts, -1, -1)).clamp(min=0)
    # (B, M, A) score of each anchor for each GT's class.
    labels_idx = gt_labels.long().clamp(min=0)[:, :, None].expand(
        -1, -1, num_anchors)
    cls_scores = pred_scores.permute(0, 2, 1).gather(1, labels_idx)
    x, y = anchor_points[:, 0], anchor_points[:, 1]
    inside = torch.stack([
        x - gt_bboxes[..., 0, None], y - gt_bboxes[..., 1, None],
        gt_bboxes[..., 2, None] - x, gt_bboxes[..., 3, None] - y
    ], -1).amin(-1) > eps
    candidate = inside & pad_mask[:, :, None]
    align = cls_scores.pow(alpha) * ious.pow(beta) * candidate
    ious = ious * candidate

    top = align.topk(min(topk, num_anchors), dim=-1).indices
    positive = torch.zeros_like(candidate).scatter_(-1, top, True)
    positive &= candidate & (align > 0)
    claimed = positive.sum(1, keepdim=True) > 1
    best = F.one_hot(ious.argmax(1), num_gts).permute(0, 2, 1).bool()
    positive = torch.where(claimed, best, positive)

    fg_mask = positive.any(1)
    gt_idx = torch.where(fg_mask, positive.float().argmax(1), 0)
    rows = torch.arange(batch)[:, None]
    labels = torch.where(fg_mask, gt_labels.long()[rows, gt_idx], 0)
    bboxes = gt_bboxes[rows, gt_idx] * fg_mask[..., None]
    align = align * positive
    norm = align * (ious * positive).amax(-1, keepdim=True) / (
        align.amax(-1, keepdim=True) + eps)
    scores = F.one_hot(labels, num_classes).float() * norm.amax(1)[..., None]
    return labels, bboxes, scores * fg_mask[..., None], fg_mask, gt_idx
