"""Held-out broken setups for the PSALM YOLO and RT-DETR tasks."""
import os.path as osp

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.transforms import BaseTransform
from mmdet.models.losses.gfocal_loss import distribution_focal_loss
from mmengine.hooks import Hook
from mmengine.model import bias_init_with_prob, is_model_wrapper

from engine_plugins.datasets import DemoShapesDataset
from engine_plugins.engine.fp32_region import fp32_region
from engine_plugins.models.rtdetr.rtdetr import RTDETR
from engine_plugins.models.rtdetr.rtdetr_data_preprocessor import (
    BOX_FORMAT_KEY, RTDETRDataPreprocessor)
from engine_plugins.models.yolo.psalm_fusion import PSALMFusion
from engine_plugins.models.yolo.yolov8_det_loss import YOLOv8DetLoss
from engine_plugins.registry import DATASETS, HOOKS, MODELS, TRANSFORMS
from engine_plugins.structures.box_frames import \
    pixel_xyxy_to_normalized_cxcywh
from engine_plugins.task_modules import bbox_ciou


def _model(runner):
    return runner.model.module if is_model_wrapper(
        runner.model) else runner.model


class _SimpleCocoParse:
    """A hand-written COCO parse, as users write for their own exports."""

    def _image_info(self, raw):
        img = raw['raw_img_info']
        return dict(
            img_path=osp.join(self.data_prefix['img'], img['file_name']),
            img_id=img['img_id'],
            seg_map_path=None,
            height=img['height'],
            width=img['width'])


# ---------------------------------------------------------------- datasets
@DATASETS.register_module()
class HeldCocoXYWHDataset(_SimpleCocoParse, DemoShapesDataset):
    """Bug: passes COCO's ``bbox`` through unchanged. COCO stores
    ``[x, y, w, h]``; mmdet expects ``[x1, y1, x2, y2]``, so every box is
    read as ending at ``(w, h)``."""

    def parse_data_info(self, raw):
        info = self._image_info(raw)
        info['instances'] = [
            dict(
                bbox=list(ann['bbox']),
                bbox_label=self.cat2label[ann['category_id']],
                ignore_flag=0) for ann in raw['raw_ann_info']
        ]
        return info


@DATASETS.register_module()
class HeldCocoCategoryIdDataset(_SimpleCocoParse, DemoShapesDataset):
    """Bug: uses the COCO ``category_id`` (1-based: 1, 2, 3) as the label
    instead of mapping it through ``cat2label`` (0-based). Triangles get
    label 3 == num_classes, circles become squares, squares triangles."""

    def parse_data_info(self, raw):
        info = self._image_info(raw)
        info['instances'] = []
        for ann in raw['raw_ann_info']:
            x, y, w, h = ann['bbox']
            info['instances'].append(
                dict(
                    bbox=[x, y, x + w, y + h],
                    bbox_label=ann['category_id'],
                    ignore_flag=0))
        return info


@DATASETS.register_module()
class HeldIgnoreTinyDataset(_SimpleCocoParse, DemoShapesDataset):
    """Wants tiny objects (under ``min_area`` px^2) ignored.

    Bug: marks them with label -1, a convention of another code base,
    instead of ``ignore_flag=1``; nothing downstream treats -1 as
    'ignore'."""

    def __init__(self, *args, min_area: float = 400.0, **kwargs) -> None:
        self.min_area = min_area
        super().__init__(*args, **kwargs)

    def parse_data_info(self, raw):
        info = self._image_info(raw)
        info['instances'] = []
        for ann in raw['raw_ann_info']:
            x, y, w, h = ann['bbox']
            label = self.cat2label[ann['category_id']]
            if w * h < self.min_area:
                label = -1
            info['instances'].append(
                dict(bbox=[x, y, x + w, y + h], bbox_label=label,
                     ignore_flag=0))
        return info


# --------------------------------------------------------------- transforms
@TRANSFORMS.register_module()
class HeldToUnitRange(BaseTransform):
    """Scales the image to [0, 1] in the pipeline (ported from a
    torchvision ``ToTensor`` habit); the preprocessor's std is set to 1.

    Bug: keeps the uint8 dtype, so ``img / 255`` is truncated to 0 for
    every pixel except 255."""

    def transform(self, results):
        img = results['img']
        results['img'] = (img / 255.0).astype(img.dtype)
        return results


# ------------------------------------------------------------------ YOLO
@MODELS.register_module()
class HeldPixelDFLLoss(YOLOv8DetLoss):
    """YOLOv8DetLoss with the DFL targets built "like mmdet's
    DistancePointBBoxCoder": from pixel anchor points and pixel boxes.

    Bug: the DFL bins are in stride units; pixel distances (up to ~100 px)
    are clamped at ``reg_max - 1`` almost always."""

    @fp32_region
    def forward(self, cls_logits, pred_dist, anchor_points, strides,
                gt_labels, gt_bboxes, pad_mask):
        pred_bboxes = self.coder.decode(anchor_points, pred_dist)  # grid
        targets = self.assigner.assign(
            cls_logits.detach().sigmoid(),
            (pred_bboxes.detach() * strides).to(gt_bboxes.dtype),
            anchor_points * strides, gt_labels, gt_bboxes, pad_mask)
        score_sum = targets.scores.sum().clamp(min=1)
        loss_cls = F.binary_cross_entropy_with_logits(
            cls_logits, targets.scores.to(cls_logits.dtype),
            reduction='sum') / score_sum

        fg = targets.fg_mask
        weight = targets.scores.sum(-1)[fg]
        target_bboxes = (targets.bboxes / strides)[fg]  # stride units
        ciou = bbox_ciou(pred_bboxes[fg], target_bboxes)
        loss_bbox = ((1.0 - ciou) * weight).sum() / score_sum
        # DFL targets from the assigner's pixel boxes and pixel anchors
        pixel_points = (anchor_points * strides).expand_as(
            pred_bboxes[..., :2])[fg]
        ltrb = self.coder.encode(pixel_points, targets.bboxes[fg])
        dfl = distribution_focal_loss(
            pred_dist[fg].reshape(-1, self.coder.reg_max),
            ltrb.reshape(-1),
            reduction='none').view(-1, 4).mean(-1)
        loss_dfl = (dfl * weight).sum() / score_sum
        return dict(
            loss_cls=loss_cls * self.cls_weight,
            loss_bbox=loss_bbox * self.box_weight,
            loss_dfl=loss_dfl * self.dfl_weight)


@MODELS.register_module()
class HeldUngatedFusion(PSALMFusion):
    """Ablation 'PSALM without the feature gate'.

    Bug: returns the neck features ungated but keeps the gate parameters
    (``gate_scale``, ``gate_bias``), which stay trainable and in the
    optimizer but are outside the graph."""

    def forward(self, feats):
        _, prototypes = super().forward(feats)
        return list(feats), prototypes


@HOOKS.register_module()
class HeldLookaheadHook(Hook):
    """Lookahead (k steps forward, 1 step back) on top of the optimizer.

    Bug: at every k-th iteration the fast weights are reset to the slow
    weights *before* the slow weights are moved towards the fast ones, so
    the slow weights never move and every k iterations the model returns
    to its initial weights: nothing is ever learned."""

    priority = 'LOW'

    def __init__(self, k: int = 5, alpha: float = 0.5) -> None:
        self.k = k
        self.alpha = alpha

    def before_train(self, runner) -> None:
        self.params = [p for p in _model(runner).parameters()
                       if p.requires_grad]
        self.slow = [p.detach().clone() for p in self.params]

    @torch.no_grad()
    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        if (runner.iter + 1) % self.k:
            return
        for fast, slow in zip(self.params, self.slow):
            fast.copy_(slow)
            slow.add_(self.alpha * (fast - slow))


# ---------------------------------------------------------------- RT-DETR
@MODELS.register_module()
class HeldImgShapeRTDETRPreprocessor(RTDETRDataPreprocessor):
    """Normalizes the gt boxes by each image's own ``img_shape`` (as
    mmdet's DINO/Deformable-DETR code does).

    Bug: RT-DETR predicts boxes normalized by the padded batch tensor;
    targets normalized by the unpadded image are stretched along y (the
    demo images are padded below) while staying inside [0, 1]."""

    def forward(self, data, training=False):
        data = super(RTDETRDataPreprocessor, self).forward(
            data=data, training=training)
        samples = data.get('data_samples')
        if training and samples is not None:
            for sample in samples:
                gt = sample.gt_instances
                boxes = getattr(gt.bboxes, 'tensor', gt.bboxes)
                gt.bboxes = pixel_xyxy_to_normalized_cxcywh(
                    boxes.float(), sample.metainfo['img_shape'])
                sample.set_metainfo({BOX_FORMAT_KEY: 'cxcywh_normalized'})
        return data


@MODELS.register_module()
class HeldRTDETRFreshClassHeads(RTDETR):
    """Re-creates the decoder's class heads at the first training step,
    "so they start at the focal prior for this dataset's classes".

    Bug: the new heads are created after the optimizer was built, so
    their parameters get gradients but are never updated: the
    classifiers stay at their random initialization."""

    _heads_fresh = False

    def loss(self, inputs, data_samples):
        if not self._heads_fresh:
            dec = self.decoder
            width = dec.score_heads[0].in_features
            heads = []
            for _ in dec.score_heads:
                head = nn.Linear(width, self.num_classes).to(inputs.device)
                nn.init.constant_(head.bias, bias_init_with_prob(0.01))
                heads.append(head)
            dec.score_heads = nn.ModuleList(heads)
            self._heads_fresh = True
        return super().loss(inputs, data_samples)


@MODELS.register_module()
class HeldRTDETRShortLogKeys(RTDETR):
    """Shortens the 30 loss names for readable log lines
    (``d0.loss_vfl`` -> ``d0.vfl``, ``enc_loss_giou`` -> ``enc_giou``,
    ``dn_loss_bbox`` -> ``dn_bbox``), keeping the last layer's
    ``loss_*``.

    Bug: mmengine sums only keys containing 'loss', so every auxiliary,
    encoder and denoising term is logged but no longer optimized."""

    def loss(self, inputs, data_samples):
        losses = super().loss(inputs, data_samples)
        return {
            (k if k.startswith('loss_') else k.replace('loss_', '')): v
            for k, v in losses.items()
        }
