"""Bugs in detection code users write: pipeline transforms, dataset
subclasses, and copies or subclasses of the heads, losses and
preprocessors."""
from typing import Optional

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmdet.models.losses.gfocal_loss import distribution_focal_loss
from mmdet.structures.bbox import HorizontalBoxes

from engine_plugins.datasets.demo_shapes import DemoShapesDataset
from engine_plugins.models.rtdetr import RTDETRDataPreprocessor
from engine_plugins.models.yolo import PSALMYOLO, PSALMDualHead
from engine_plugins.models.yolo.yolov8_det_loss import YOLOv8DetLoss
from engine_plugins.registry import DATASETS, MODELS, TRANSFORMS
from engine_plugins.task_modules import bbox_ciou


# -- pipeline transforms -----------------------------------------------------
@TRANSFORMS.register_module()
class MutBoxesAs(BaseTransform):
    """A "to the model's format" transform near the end of the pipeline:
    converts the gt boxes from pixel xyxy to ``fmt`` (``'xywh'``,
    ``'cxcywh'``, ``'normalized'`` xyxy or ``'normalized_cxcywh'``)."""

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt

    def transform(self, results: dict) -> dict:
        boxes = results['gt_bboxes'].tensor
        x1, y1, x2, y2 = boxes.unbind(-1)
        h, w = results['img_shape'][:2]
        if self.fmt == 'xywh':
            out = torch.stack([x1, y1, x2 - x1, y2 - y1], -1)
        elif self.fmt == 'cxcywh':
            out = torch.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1,
                               y2 - y1], -1)
        elif self.fmt == 'normalized':
            out = boxes / boxes.new_tensor([w, h, w, h])
        else:
            out = torch.stack([(x1 + x2) / 2 / w, (y1 + y2) / 2 / h,
                               (x2 - x1) / w, (y2 - y1) / h], -1)
        results['gt_bboxes'] = HorizontalBoxes(out)
        return results


@TRANSFORMS.register_module()
class MutRememberBoxes(BaseTransform):
    """Keeps a copy of the boxes (to "restore the exact annotations" after
    resizing: the boxes then stay in the original image frame)."""

    def transform(self, results: dict) -> dict:
        results['mut_boxes'] = results['gt_bboxes'].clone()
        return results


@TRANSFORMS.register_module()
class MutRestoreBoxes(BaseTransform):
    """Puts back the boxes :class:`MutRememberBoxes` kept."""

    def transform(self, results: dict) -> dict:
        results['gt_bboxes'] = results.pop('mut_boxes')
        return results


@TRANSFORMS.register_module()
class MutLabelOffset(BaseTransform):
    """Label map with 1-based class ids (category_id used as the label)."""

    def __init__(self, offset: int = 1) -> None:
        self.offset = offset

    def transform(self, results: dict) -> dict:
        results['gt_bboxes_labels'] = results['gt_bboxes_labels'] + \
            self.offset
        return results


@TRANSFORMS.register_module()
class MutImageToUnit(BaseTransform):
    """Scales the image to [0, 1] floats (as a loader for float models
    does), in front of a preprocessor that divides by 255 again."""

    def transform(self, results: dict) -> dict:
        results['img'] = results['img'].astype(np.float32) / 255.0
        return results


# -- datasets ---------------------------------------------------------------
@DATASETS.register_module()
class MutShapesDataset(DemoShapesDataset):
    """A custom COCO-format dataset class whose ``parse_data_info`` gets
    one thing wrong (``bug``): ``'xywh_as_xyxy'`` keeps COCO's
    ``[x, y, w, h]`` as corners; ``'normalized'`` divides the boxes by the
    image size; ``'category_id'`` uses the 1-based category id as the
    label."""

    def __init__(self, bug: str, **kwargs) -> None:
        self.bug = bug
        super().__init__(**kwargs)

    def parse_data_info(self, raw_data_info: dict) -> dict:
        info = super().parse_data_info(raw_data_info)
        w, h = info['width'], info['height']
        for inst in info['instances']:
            x1, y1, x2, y2 = inst['bbox']
            if self.bug == 'xywh_as_xyxy':
                inst['bbox'] = [x1, y1, x2 - x1, y2 - y1]
            elif self.bug == 'normalized':
                inst['bbox'] = [x1 / w, y1 / h, x2 / w, y2 / h]
            elif self.bug == 'category_id':
                inst['bbox_label'] = self.cat_ids[inst['bbox_label']]
        return info


# -- PSALM YOLO -------------------------------------------------------------
@MODELS.register_module()
class MutPSALMYOLO(PSALMYOLO):
    """``bug='skip_neck'``: features go from the backbone straight to the
    fusion (the neck is built, never called); ``'no_grad_backbone'``: the
    backbone runs under ``torch.no_grad()`` "to save memory"."""

    def __init__(self, bug: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.bug = bug

    def extract_feat(self, inputs: torch.Tensor):
        if self.bug == 'skip_neck':
            return self.fusion(self.backbone(inputs))
        with torch.no_grad():
            feats = self.backbone(inputs)
        return self.fusion(self.neck(feats))


@MODELS.register_module()
class MutPSALMDualHead(PSALMDualHead):
    """The head with an edit to its loss dict (``bug``): ``'detach_dfl'``,
    ``'cls_as_float'``, ``'rename_cls'`` (to ``cls``), ``'rename_all'``
    (``bbox``, ``cls``, ``dfl``)."""

    def __init__(self, bug: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.bug = bug

    def loss(self, feats, prototypes, data_samples):
        losses = super().loss(feats, prototypes, data_samples)
        if self.bug == 'detach_dfl':
            losses['loss_dfl'] = losses['loss_dfl'].detach()
        elif self.bug == 'cls_as_float':
            losses['loss_cls'] = losses['loss_cls'].item()
        elif self.bug == 'rename_cls':
            losses['cls'] = losses.pop('loss_cls')
        elif self.bug == 'rename_all':
            losses = {k.replace('loss_', ''): v for k, v in losses.items()}
        return losses


@MODELS.register_module()
class MutYOLOv8DetLoss(YOLOv8DetLoss):
    """A user's copy of ``YOLOv8DetLoss.forward`` with one change
    (``bug``): ``'pixel_targets'`` forgets to divide the gt boxes by the
    stride; ``'grid_anchors'`` gives the assigner anchor points in grid
    units; ``'grid_predictions'`` gives it predicted boxes in stride units.
    """

    def __init__(self, bug: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.bug = bug

    def forward(self, cls_logits, pred_dist, anchor_points, strides,
                gt_labels, gt_bboxes, pad_mask):
        pred_bboxes = self.coder.decode(anchor_points, pred_dist)
        points_px = anchor_points * strides
        boxes_px = pred_bboxes.detach() * strides
        if self.bug == 'grid_anchors':
            points_px = anchor_points
        elif self.bug == 'grid_predictions':
            boxes_px = pred_bboxes.detach()
        targets = self.assigner.assign(cls_logits.detach().sigmoid(),
                                       boxes_px.to(gt_bboxes.dtype),
                                       points_px, gt_labels, gt_bboxes,
                                       pad_mask)
        score_sum = targets.scores.sum().clamp(min=1)
        loss_cls = torch.nn.functional.binary_cross_entropy_with_logits(
            cls_logits, targets.scores.to(cls_logits.dtype),
            reduction='sum') / score_sum
        fg = targets.fg_mask
        weight = targets.scores.sum(-1)[fg]
        if self.bug == 'pixel_targets':
            target_bboxes = targets.bboxes[fg]
        else:
            target_bboxes = (targets.bboxes / strides)[fg]
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


# -- RT-DETR ----------------------------------------------------------------
@MODELS.register_module()
class MutRTDETRDataPreprocessor(RTDETRDataPreprocessor):
    """The preprocessor with its box conversion rewritten (``bug``):
    ``'no_conversion'`` leaves pixel xyxy; ``'image_frame'`` normalizes by
    the image size instead of the padded batch; ``'xyxy'`` normalizes but
    keeps corners; ``'xywh'`` normalizes to ``[x, y, w, h]``."""

    def __init__(self, bug: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.bug = bug

    def _convert(self, sample, hw) -> None:
        gt = sample.gt_instances
        boxes: Optional[torch.Tensor] = getattr(gt.bboxes, 'tensor',
                                                gt.bboxes).float()
        if self.bug == 'no_conversion':
            gt.bboxes = boxes
            return
        if self.bug == 'image_frame':
            hw = sample.metainfo['img_shape']
            return super()._convert(sample, hw)
        h, w = hw[:2]
        norm = boxes / boxes.new_tensor([w, h, w, h])
        if self.bug == 'xywh':
            norm = torch.cat([norm[:, :2], norm[:, 2:] - norm[:, :2]], -1)
        gt.bboxes = norm
