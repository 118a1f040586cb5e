"""RT-DETR's training losses over decoder layers, encoder and denoising."""
from typing import Dict, List, Sequence, Tuple

import torch
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy, bbox_overlaps
from mmengine import dist
from torch import nn

from engine_plugins.engine.fp32_region import fp32_region
from engine_plugins.engine.sanity.health import HealthStat
from engine_plugins.engine.sanity.preflight import TargetFormatError
from engine_plugins.registry import MODELS, TASK_UTILS
from engine_plugins.structures import PackedTargets
from engine_plugins.structures.box_frames import (NORMALIZED_TOL,
                                                  check_normalized_cxcywh)
from .rtdetr_decoder import DecoderOutputs

Matches = List[Tuple[torch.Tensor, torch.Tensor]]

MATCHED_IOU = HealthStat(
    'health/rtdetr_matched_iou',
    low=0.01,
    high=1.0,
    cause='box_format',
    meaning='matched predictions do not overlap their gts at all: '
    'predictions and targets are in different box conventions or frames')
MATCHED_PER_GT = HealthStat(
    'health/rtdetr_matched_per_gt',
    low=0.999,
    high=1.001,
    cause='loss_dict',
    targets_of=('loss_bbox', 'loss_giou'),
    meaning='the Hungarian matching must pair every gt with exactly one '
    'query; a matcher that returns fewer or more pairs trains on the '
    'wrong targets')
SCORED = HealthStat(
    'health/rtdetr_scored_queries', low=1.0, targets_of='loss_vfl')
GT_INVALID = HealthStat(
    'health/rtdetr_gt_invalid',
    low=0.0,
    high=0.0,
    cause='box_format',
    meaning='gt boxes outside [0, 1] or with zero width/height after the '
    'conversion to normalized cxcywh')


@MODELS.register_module()
class RTDETRCriterion(nn.Module):
    """Hungarian-matched VFL + L1 + GIoU losses of every prediction set.

    Scored sets: the last decoder layer (``loss_vfl``, ``loss_bbox``,
    ``loss_giou``), each earlier layer (``d0.loss_vfl``, ...), the
    encoder's top-k (``enc_loss_vfl``, ...), each matched by the
    Hungarian matcher on its own; and the denoising queries of every layer
    (``dn_loss_vfl``, ``d0.dn_loss_vfl``, ...), whose matching is fixed by
    construction. All losses are divided by the number of gt boxes
    (averaged over ranks; times the group count for denoising).

    Runs in an FP32 region: matching and losses see fp32 inputs under
    AMP, and targets are built in the predictions' dtype.

    Args:
        num_classes: Number of classes.
        matcher: ``BatchedHungarianMatcher`` config.
        loss_cls: Classification loss (``RTDETRVarifocalLoss``).
        loss_bbox: L1 loss on normalized cxcywh (mmdet ``L1Loss``).
        loss_iou: GIoU loss (mmdet ``GIoULoss``).

    Example:
        >>> criterion = MODELS.build(dict(
        ...     type='RTDETRCriterion', num_classes=80,
        ...     matcher=dict(
        ...         type='BatchedHungarianMatcher',
        ...         match_costs=[
        ...             dict(type='FocalLossCost', weight=2.0, alpha=0.25,
        ...                  gamma=2.0),
        ...             dict(type='BBoxL1Cost', weight=5.0,
        ...                  box_format='xywh'),
        ...             dict(type='IoUCost', iou_mode='giou', weight=2.0)]),
        ...     loss_cls=dict(type='RTDETRVarifocalLoss', alpha=0.75,
        ...                   gamma=2.0, loss_weight=1.0),
        ...     loss_bbox=dict(type='L1Loss', loss_weight=5.0),
        ...     loss_iou=dict(type='GIoULoss', loss_weight=2.0)))
    """

    def __init__(self,
                 num_classes: int,
                 matcher: dict,
                 loss_cls: dict = dict(
                     type='RTDETRVarifocalLoss',
                     alpha=0.75,
                     gamma=2.0,
                     loss_weight=1.0),
                 loss_bbox: dict = dict(type='L1Loss', loss_weight=5.0),
                 loss_iou: dict = dict(type='GIoULoss',
                                       loss_weight=2.0)) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.matcher = TASK_UTILS.build(matcher)
        self.loss_cls = MODELS.build(loss_cls)
        self.loss_bbox = MODELS.build(loss_bbox)
        self.loss_iou = MODELS.build(loss_iou)

    @fp32_region
    def forward(self, outputs: DecoderOutputs,
                gt_labels: Sequence[torch.Tensor],
                gt_boxes: Sequence[torch.Tensor],
                names: Sequence[str] = ()) -> Dict[str, torch.Tensor]:
        """Losses of ``outputs`` against per-image gts.

        Args:
            outputs: The decoder's training outputs.
            gt_labels: Per image ``(n_i,)`` in ``[0, num_classes)``.
            gt_boxes: Per image ``(n_i, 4)`` normalized cxcywh.
            names: Per image, a name for error messages (its file).
        """
        targets = PackedTargets.of(gt_labels, gt_boxes)
        gt_labels, gt_boxes = targets.labels, targets.boxes
        self._check_targets(targets, names)
        num_boxes = self._num_boxes(gt_labels, outputs.logits.device)
        sizes = targets.counts
        gts = (targets.flat_labels, targets.flat_boxes, targets.offsets)
        losses = {}
        num_layers = outputs.logits.shape[0]
        sets = [(f'd{i}.', outputs.logits[i], outputs.boxes[i])
                for i in range(num_layers - 1)]
        sets.append(('', outputs.logits[-1], outputs.boxes[-1]))
        sets.append(('enc_', outputs.enc_logits, outputs.enc_boxes))
        for prefix, logits, boxes in sets:
            matches = self.matcher(logits, boxes, gt_labels, gt_boxes)
            if not prefix:  # the last layer: the matching users evaluate
                matched = sum(len(query) for query, _ in matches)
                MATCHED_PER_GT.publish(
                    torch.full((), float(matched), device=logits.device),
                    count=sum(sizes))
                # Every query scores every class (background included).
                SCORED.publish(
                    torch.full((), float(logits.shape[:2].numel()),
                               device=logits.device))
            losses.update(
                self._set_losses(prefix, logits, boxes, matches, gts,
                                 num_boxes))
        if outputs.dn is not None:
            matches = self.denoising_matches(outputs.dn.positive_idx,
                                             outputs.dn.num_groups)
            for i in range(num_layers):
                prefix = 'dn_' if i == num_layers - 1 else f'd{i}.dn_'
                losses.update(
                    self._set_losses(prefix, outputs.dn_logits[i],
                                     outputs.dn_boxes[i], matches, gts,
                                     num_boxes * outputs.dn.num_groups))
        return losses

    def _check_targets(self, targets: PackedTargets, names) -> None:
        gt_boxes = targets.boxes
        boxes = targets.flat_boxes
        if len(boxes):
            xyxy = targets.flat_xyxy
            tol = NORMALIZED_TOL  # as check_normalized_cxcywh
            bad = ((xyxy < -tol) | (xyxy > 1 + tol)).any(-1) | (
                boxes[:, 2:] <= 0).any(-1)
            GT_INVALID.publish(bad.sum(), count=len(boxes))
        try:  # the whole batch at once: one host sync per step
            check_normalized_cxcywh(boxes, 'gt boxes')
        except TargetFormatError:
            for i, boxes in enumerate(gt_boxes):  # name the image
                check_normalized_cxcywh(
                    boxes, f'gt boxes of image {i}' +
                    (f' ({names[i]})' if i < len(names) else ''))
            raise

    @staticmethod
    def _num_boxes(gt_labels, device) -> torch.Tensor:
        # Lengths are host values: no device sync. Averaged over ranks so
        # every rank divides by the same number (all_reduce is a no-op
        # outside DDP).
        num = torch.tensor(
            float(sum(len(labels) for labels in gt_labels)), device=device)
        dist.all_reduce(num, op='mean')
        return num.clamp(min=1.0)

    @staticmethod
    def denoising_matches(positive_idx: Sequence[torch.Tensor],
                          num_groups: int) -> Matches:
        """Fixed matching of denoising positives: entry ``g * n + k`` of an
        image's positives is its gt ``k``."""
        matches = []
        for idx in positive_idx:
            num_gts = len(idx) // num_groups
            gt = torch.arange(num_gts, device=idx.device).repeat(num_groups)
            matches.append((idx, gt))
        return matches

    def _set_losses(self, prefix: str, logits: torch.Tensor,
                    boxes: torch.Tensor, matches: Matches,
                    gts: Tuple[torch.Tensor, torch.Tensor, List[int]],
                    num_boxes: torch.Tensor) -> Dict[str, torch.Tensor]:
        all_labels, all_boxes, offsets = gts
        # One gather from the batch's concatenated gts: image b's gt j is
        # row offsets[b] + j.
        image = torch.cat([
            torch.full_like(query, b) for b, (query, _) in enumerate(matches)
        ])
        query = torch.cat([query for query, _ in matches])
        row = torch.cat([gt + offsets[b] for b, (_, gt) in enumerate(matches)])
        target_boxes, labels = all_boxes[row], all_labels[row]
        pred = boxes[image, query]
        pred_xyxy = bbox_cxcywh_to_xyxy(pred)
        target_xyxy = bbox_cxcywh_to_xyxy(target_boxes.to(pred.dtype))
        iou = bbox_overlaps(
            pred_xyxy.detach(), target_xyxy, is_aligned=True)
        if 'dn_' not in prefix:  # denoising pairs are fixed, not matched
            MATCHED_IOU.publish(
                iou.sum(), count=len(iou), suffix=prefix.strip('._') or 'last')

        # IoU-aware targets placed straight on the gt class: background
        # queries keep all zeros, no class index stands for background.
        target = torch.zeros_like(logits)
        positive = torch.zeros_like(logits, dtype=torch.bool)
        target[image, query, labels] = iou.to(target.dtype)
        positive[image, query, labels] = True
        loss_giou = self.loss_iou(
            pred_xyxy, target_xyxy, avg_factor=num_boxes)
        if len(pred) == 0:
            # mmdet's GIoULoss returns a fresh (unconnected) zero here.
            loss_giou = boxes.sum() * 0.0
        return {
            f'{prefix}loss_vfl':
            self.loss_cls(logits, target, positive, avg_factor=num_boxes),
            f'{prefix}loss_bbox':
            self.loss_bbox(pred, target_boxes.to(pred.dtype),
                           avg_factor=num_boxes),
            f'{prefix}loss_giou': loss_giou,
        }
