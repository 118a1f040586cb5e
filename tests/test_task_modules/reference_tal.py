"""A straightforward, loop-per-GT-and-anchor version of YOLOv8's
task-aligned assignment, to check the batched assigner against. Also
returns how many anchors were claimed by several GTs."""
import torch

from engine_plugins.task_modules import bbox_ciou


def reference_tal(pred_scores, pred_bboxes, anchor_points, gt_labels,
                  gt_bboxes, pad_mask, num_classes, topk=10, alpha=0.5,
                  beta=6.0, eps=1e-9):
    batch, num_anchors, _ = pred_scores.shape
    num_gts = gt_bboxes.shape[1]
    labels = torch.zeros(batch, num_anchors, dtype=torch.long)
    bboxes = torch.zeros(batch, num_anchors, 4)
    scores = torch.zeros(batch, num_anchors, num_classes)
    fg = torch.zeros(batch, num_anchors, dtype=torch.bool)
    gt_idx = torch.zeros(batch, num_anchors, dtype=torch.long)
    conflicts = 0
    for b in range(batch):
        overlap, align, positive = {}, {}, set()
        for m in range(num_gts):
            if not pad_mask[b, m]:
                continue
            x1, y1, x2, y2 = gt_bboxes[b, m].tolist()
            for a in range(num_anchors):
                x, y = anchor_points[a].tolist()
                if min(x - x1, y - y1, x2 - x, y2 - y) > eps:
                    iou = max(
                        float(bbox_ciou(gt_bboxes[b, m], pred_bboxes[b, a])),
                        0.0)
                    score = float(pred_scores[b, a, int(gt_labels[b, m])])
                    overlap[m, a] = iou
                    align[m, a] = score**alpha * iou**beta
            ranked = sorted(
                range(num_anchors), key=lambda a: -align.get((m, a), 0.0))
            for a in ranked[:topk]:
                if align.get((m, a), 0.0) > 0:
                    positive.add((m, a))
        for a in range(num_anchors):
            claims = [m for m in range(num_gts) if (m, a) in positive]
            if len(claims) > 1:
                conflicts += 1
                ious = [overlap.get((m, a), 0.0) for m in range(num_gts)]
                best = ious.index(max(ious))
                for m in claims:
                    positive.discard((m, a))
                positive.add((best, a))
        max_align = {m: 0.0 for m in range(num_gts)}
        max_iou = {m: 0.0 for m in range(num_gts)}
        for m, a in positive:
            max_align[m] = max(max_align[m], align[m, a])
            max_iou[m] = max(max_iou[m], overlap[m, a])
        for m, a in positive:
            fg[b, a] = True
            gt_idx[b, a] = m
            labels[b, a] = int(gt_labels[b, m])
            bboxes[b, a] = gt_bboxes[b, m]
            scores[b, a, labels[b, a]] = (
                align[m, a] * max_iou[m] / (max_align[m] + eps))
    return labels, bboxes, scores, fg, gt_idx, conflicts
