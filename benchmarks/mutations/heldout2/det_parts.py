"""Parts of held-out set B on the detection tasks (PSALM YOLO and
RT-DETR): datasets, transforms, losses, model parts and an optimizer
constructor, each with one bug."""
import mmcv
import torch
import torch.nn.functional as F
from mmcv.transforms import LoadImageFromFile
from mmdet.datasets.transforms import RandomFlip
from mmdet.models.losses.gfocal_loss import distribution_focal_loss
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy, bbox_overlaps
from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor

from engine_plugins.datasets.demo_shapes import DemoShapesDataset
from engine_plugins.engine.fp32_region import fp32_region
from engine_plugins.models.rtdetr import rtdetr_criterion
from engine_plugins.models.rtdetr.rtdetr_criterion import RTDETRCriterion
from engine_plugins.models.rtdetr.rtdetr_decoder import (DecoderOutputs,
                                                         RTDETRDecoder)
from engine_plugins.models.yolo.yolov8_det_loss import YOLOv8DetLoss
from engine_plugins.registry import (DATASETS, MODELS,
                                     OPTIM_WRAPPER_CONSTRUCTORS,
                                     OPTIM_WRAPPERS, OPTIMIZERS, TRANSFORMS)

# ---------------------------------------------------------------- datasets


@DATASETS.register_module()
class HeldBCategoryIdShapesDataset(DemoShapesDataset):
    """Uses the annotation file's category ids as the class labels ("our
    ids are already contiguous").

    BUG: COCO category ids start at 1: the labels are 1..3 for 3 classes,
    so the first class is never used and the third is out of range.
    """

    def parse_data_info(self, raw_data_info: dict):
        self.cat2label = {cat_id: cat_id for cat_id in self.cat_ids}
        return super().parse_data_info(raw_data_info)


@DATASETS.register_module()
class HeldBVisibleOnlyShapesDataset(DemoShapesDataset):
    """Treats boxes that the labelling tool marked as not visible like
    crowd regions (ignored by the losses).

    BUG: these annotation files have no ``visible`` field, and the default
    makes every box "not visible": all boxes are ignore-flagged and
    ``PackDetInputs`` moves them to ``ignored_instances``, so every image
    trains as background.
    """

    def parse_data_info(self, raw_data_info: dict):
        for ann in raw_data_info['raw_ann_info']:
            ann['iscrowd'] = int(not ann.get('visible', False))
        return super().parse_data_info(raw_data_info)


# -------------------------------------------------------------- transforms


@TRANSFORMS.register_module()
class HeldBRandomFlip(RandomFlip):
    """mmdet's ``RandomFlip`` that mirrors the boxes about the image's
    original width.

    BUG: after the mosaic and the affine crop the image is 256 px wide,
    not its original width (``ori_shape``), so the boxes of every flipped
    image are shifted by the difference (tens of pixels, partly outside
    the image); unflipped images are right.
    """

    _reported = False

    def _flip(self, results: dict) -> None:
        results['img'] = mmcv.imflip(
            results['img'], direction=results['flip_direction'])
        if results.get('gt_bboxes', None) is not None:
            results['gt_bboxes'].flip_(results['ori_shape'],
                                       results['flip_direction'])
            if (not HeldBRandomFlip._reported and len(results['gt_bboxes'])
                    and results['ori_shape'][1] != results['img'].shape[1]):
                # (benchmark bookkeeping only: when the first one comes)
                HeldBRandomFlip._reported = True
                print_log('HeldBRandomFlip: first flipped image with boxes '
                          f'({results["ori_shape"]} original, '
                          f'{results["img"].shape[:2]} now)',
                          logger='current')
        self._record_homography_matrix(results)


@TRANSFORMS.register_module()
class HeldBHalfSizeImageLoader(LoadImageFromFile):
    """Stands for a copy of the dataset whose image files were re-saved at
    half resolution to save disk space, with the annotation file kept.

    BUG: the boxes are still in full-resolution pixels: twice too large
    and partly off the (smaller) image; every later transform scales and
    flips them in the wrong frame.
    """

    def __init__(self, scale: float = 0.5, **kwargs) -> None:
        super().__init__(**kwargs)
        self.scale = scale

    def transform(self, results: dict):
        results = super().transform(results)
        img = mmcv.imrescale(results['img'], self.scale)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results


# -------------------------------------------------------------- YOLO parts


@MODELS.register_module()
class HeldBShortKeysDetLoss(YOLOv8DetLoss):
    """``YOLOv8DetLoss`` with a shorter log name for the DFL term.

    BUG: mmengine adds up only the keys that contain ``loss``: ``dfl`` is
    logged but never trained.
    """

    def forward(self, *args, **kwargs):
        losses = super().forward(*args, **kwargs)
        losses['dfl'] = losses.pop('loss_dfl')
        return losses


@MODELS.register_module()
class HeldBLogIoUDetLoss(YOLOv8DetLoss):
    """``YOLOv8DetLoss`` with the UnitBox IoU loss ``-log(IoU)`` as the box
    term, computed for all anchors and masked with ``torch.where`` (static
    shapes, no boolean indexing).

    BUG: background anchors have IoU 0 with their (unused) target box.
    ``torch.where`` hides the ``-log(0) = inf`` in the forward pass (the
    loss is finite), but its backward multiplies the zero gradient of the
    masked branch by ``1 / 0``: NaN gradients at every step.
    """

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
        weight = targets.scores.sum(-1)
        target_bboxes = targets.bboxes / strides  # stride units
        iou = bbox_overlaps(pred_bboxes, target_bboxes, is_aligned=True)
        loss_bbox = (torch.where(fg, -torch.log(iou), 0.0) *
                     weight).sum() / score_sum
        points = anchor_points.expand_as(pred_bboxes[..., :2])[fg]
        ltrb = self.coder.encode(points, target_bboxes[fg])
        dfl = distribution_focal_loss(
            pred_dist[fg].reshape(-1, self.coder.reg_max),
            ltrb.reshape(-1),
            reduction='none').view(-1, 4).mean(-1)
        loss_dfl = (dfl * weight[fg]).sum() / score_sum
        return dict(
            loss_cls=loss_cls * self.cls_weight,
            loss_bbox=loss_bbox * self.box_weight,
            loss_dfl=loss_dfl * self.dfl_weight)


# ----------------------------------------------------------- RT-DETR parts


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class HeldBNoDecayConstructor(DefaultOptimWrapperConstructor):
    """Two parameter groups, the usual recipe: weight decay on the weight
    matrices and kernels, none on biases (and norms).

    BUG: the split is ``ndim >= 2`` -> decay, ``elif name.endswith('bias')``
    -> no decay, and nothing else: the 1-D weights of every BatchNorm and
    LayerNorm fall through both tests and are in no group at all.
    """

    def __call__(self, model):
        if hasattr(model, 'module'):
            model = model.module
        decay, no_decay = [], []
        for name, param in model.named_parameters():
            if not param.requires_grad:
                continue
            if param.ndim >= 2:
                decay.append(param)
            elif name.endswith('bias'):
                no_decay.append(param)
        optimizer_cfg = self.optimizer_cfg.copy()
        optimizer_cfg['params'] = [
            dict(params=decay),
            dict(params=no_decay, weight_decay=0.0)
        ]
        optimizer = OPTIMIZERS.build(optimizer_cfg)
        wrapper_cfg = self.optim_wrapper_cfg.copy()
        wrapper_cfg.setdefault('type', 'OptimWrapper')
        return OPTIM_WRAPPERS.build(
            wrapper_cfg, default_args=dict(optimizer=optimizer))


@MODELS.register_module()
class HeldBPerImageVFLCriterion(RTDETRCriterion):
    """Classification loss normalized per image (by the image's own number
    of objects), then averaged over the images, so that crowded images do
    not dominate the batch.

    BUG: an image without objects divides its loss (every query is a
    negative there, so it is not 0) by 0: the loss is inf and the
    gradients are inf/NaN whenever a batch holds an empty image.
    """

    _reported = False

    def _set_losses(self, prefix, logits, boxes, matches, gts, num_boxes):
        losses = super()._set_losses(prefix, logits, boxes, matches, gts,
                                     num_boxes)
        all_labels, all_boxes, offsets = gts
        per_image = []
        for b, (query, gt) in enumerate(matches):
            labels = all_labels[gt + offsets[b]]
            pred_xyxy = bbox_cxcywh_to_xyxy(boxes[b, query]).detach()
            target_xyxy = bbox_cxcywh_to_xyxy(
                all_boxes[gt + offsets[b]].to(pred_xyxy.dtype))
            iou = bbox_overlaps(pred_xyxy, target_xyxy, is_aligned=True)
            target = torch.zeros_like(logits[b])
            positive = torch.zeros_like(logits[b], dtype=torch.bool)
            target[query, labels] = iou.to(target.dtype)
            positive[query, labels] = True
            per_image.append(
                self.loss_cls(logits[b], target, positive,
                              avg_factor=len(gt)))
            if len(gt) == 0 and not HeldBPerImageVFLCriterion._reported:
                # (benchmark bookkeeping only: when the first one comes)
                HeldBPerImageVFLCriterion._reported = True
                print_log('HeldBPerImageVFLCriterion: image without objects '
                          'in this batch', logger='current')
        losses[f'{prefix}loss_vfl'] = torch.stack(per_image).mean()
        return losses


@MODELS.register_module()
class HeldBGroupedLossCriterion(RTDETRCriterion):
    """Groups the 27 loss terms by type for a readable log: every decoder
    layer, the encoder and the denoising queries add up into
    ``loss_vfl``, ``loss_bbox`` and ``loss_giou``.

    BUG: ``grouped[name] = value`` where ``+=`` was meant: each set
    overwrites the one before, and the last one written - the denoising
    queries of the last layer - is all that is trained. The matched
    queries, the earlier layers and the encoder get no loss.
    """

    def forward(self, outputs, gt_labels, gt_boxes, names=()):
        losses = super().forward(outputs, gt_labels, gt_boxes, names)
        grouped = {}
        for key, value in losses.items():
            name = key.split('.')[-1].replace('enc_', '').replace('dn_', '')
            grouped[name] = value
        return grouped


@MODELS.register_module()
class HeldBDetachedBoxCriterion(RTDETRCriterion):
    """``_set_losses`` with the predicted boxes converted to xyxy once.

    BUG: the xyxy boxes are detached once for the IoU-aware class targets
    (which must not carry a gradient), and the GIoU loss reuses them: it is
    computed and logged, but contributes no gradient.
    """

    def _set_losses(self, prefix, logits, boxes, matches, gts, num_boxes):
        all_labels, all_boxes, offsets = gts
        image = torch.cat([
            torch.full_like(query, b) for b, (query, _) in enumerate(matches)
        ])
        query = torch.cat([query for query, _ in matches])
        row = torch.cat(
            [gt + offsets[b] for b, (_, gt) in enumerate(matches)])
        target_boxes, labels = all_boxes[row], all_labels[row]
        pred = boxes[image, query]
        pred_xyxy = bbox_cxcywh_to_xyxy(pred).detach()
        target_xyxy = bbox_cxcywh_to_xyxy(target_boxes.to(pred.dtype))
        iou = bbox_overlaps(pred_xyxy, target_xyxy, is_aligned=True)
        if 'dn_' not in prefix:
            rtdetr_criterion.MATCHED_IOU.publish(
                iou.sum(), count=len(iou),
                suffix=prefix.strip('._') or 'last')
        target = torch.zeros_like(logits)
        positive = torch.zeros_like(logits, dtype=torch.bool)
        target[image, query, labels] = iou.to(target.dtype)
        positive[image, query, labels] = True
        loss_giou = self.loss_iou(
            pred_xyxy, target_xyxy, avg_factor=num_boxes)
        if len(pred) == 0:
            loss_giou = boxes.sum() * 0.0
        return {
            f'{prefix}loss_vfl':
            self.loss_cls(logits, target, positive, avg_factor=num_boxes),
            f'{prefix}loss_bbox':
            self.loss_bbox(pred, target_boxes.to(pred.dtype),
                           avg_factor=num_boxes),
            f'{prefix}loss_giou': loss_giou,
        }


@MODELS.register_module()
class HeldBNoGradSelectionDecoder(RTDETRDecoder):
    """``RTDETRDecoder`` with the top-k query selection run under
    ``torch.no_grad()`` ("top-k is not differentiable, and its outputs are
    detached anyway").

    BUG: the selection's score and box heads are trained only by the
    encoder losses (``enc_loss_*``), which now see outputs without a
    graph: those heads (and the memory projection inside the selection)
    never get a gradient.
    """

    def forward(self, feats, gt_labels=None, gt_boxes=None):
        memory, shapes, spatial_shapes, level_start = self._flatten(feats)
        with torch.no_grad():
            selected = self.query_selection(memory, shapes)
        content, ref_unact = selected.content, selected.ref_boxes_unact
        dn = None
        if self.training and self.denoising is not None and gt_labels:
            dn = self.denoising(gt_labels, gt_boxes, self.num_queries)
        attn_mask = None
        if dn is not None:
            content = torch.cat([dn.label_queries.to(content.dtype), content],
                                1)
            ref_unact = torch.cat(
                [dn.ref_boxes_unact.to(ref_unact.dtype), ref_unact], 1)
            attn_mask = dn.attn_mask
        logits, boxes = self._refine(content, ref_unact.sigmoid(), memory,
                                     spatial_shapes, level_start, attn_mask)
        num_dn = 0 if dn is None else dn.ref_boxes_unact.shape[1]
        return DecoderOutputs(
            logits=logits[:, :, num_dn:],
            boxes=boxes[:, :, num_dn:],
            enc_logits=selected.enc_logits,
            enc_boxes=selected.enc_boxes,
            dn_logits=logits[:, :, :num_dn] if dn is not None else None,
            dn_boxes=boxes[:, :, :num_dn] if dn is not None else None,
            dn=dn)
