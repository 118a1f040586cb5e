"""Held-out set 3, RT-DETR: pipeline steps, a preprocessor, a loss and a
detector variant a user might add, each with one bug (``BUG``)."""
from typing import Dict

import torch
from mmcv.transforms import BaseTransform
from mmdet.models.data_preprocessors import DetDataPreprocessor
from mmdet.structures.bbox import bbox_overlaps
from torch import nn

from engine_plugins.models.rtdetr import RTDETR, RTDETRDataPreprocessor
from engine_plugins.registry import MODELS, TRANSFORMS


@TRANSFORMS.register_module()
class HeldCBackgroundAtZero(BaseTransform):
    """Shift the labels by one so that class 0 is the background, as
    torchvision detection models expect.

    BUG: RT-DETR has no background class: labels become 1..num_classes,
    every class is trained as its neighbour and the last one is out of
    range.
    """

    def transform(self, results: Dict) -> Dict:
        if 'gt_bboxes_labels' in results:
            results['gt_bboxes_labels'] = results['gt_bboxes_labels'] + 1
        return results


@TRANSFORMS.register_module()
class HeldCIgnoreTinyBoxes(BaseTransform):
    """Mark boxes smaller than ``min_size`` pixels per side (area) as
    ignored; ``PackDetInputs`` moves them to ``ignored_instances``.

    BUG: the comparison is inverted: every box larger than the limit,
    i.e. all of them, is ignored, and the model trains on images without
    a single gt.
    """

    def __init__(self, min_size: float = 8.0) -> None:
        self.min_size = min_size

    def transform(self, results: Dict) -> Dict:
        boxes = results.get('gt_bboxes')
        if boxes is None or len(boxes) == 0:
            return results
        areas = boxes.areas.numpy()
        results['gt_ignore_flags'] = areas > self.min_size**2
        return results


@TRANSFORMS.register_module()
class HeldCNormalizeBoxes(BaseTransform):
    """Give RT-DETR the boxes it predicts, normalized to [0, 1] by the
    image size.

    BUG: ``RTDETRDataPreprocessor`` already normalizes by the padded
    batch: the targets end up divided twice, all squeezed into the
    top-left ~1/256 of the image.
    """

    def transform(self, results: Dict) -> Dict:
        h, w = results['img_shape'][:2]
        if results.get('gt_bboxes') is not None:
            results['gt_bboxes'].rescale_((1.0 / w, 1.0 / h))
        return results


@MODELS.register_module()
class HeldCCenterPadPreprocessor(RTDETRDataPreprocessor):
    """Pad each image evenly on all sides in the batch tensor (centred,
    like ``LetterBox``) rather than at the bottom and right only.

    BUG: the images are moved to the centre of the padded canvas but the
    gt boxes are not translated with them: every padded image's boxes are
    off by half its padding.
    """

    def forward(self, data: dict, training: bool = False) -> dict:
        data = DetDataPreprocessor.forward(self, data=data, training=training)
        inputs, samples = data['inputs'], data.get('data_samples')
        if samples is None:
            return data
        height, width = inputs.shape[-2:]
        for i, sample in enumerate(samples):
            h, w = sample.img_shape[:2]
            top, left = (height - h) // 2, (width - w) // 2
            if top or left:
                canvas = torch.zeros_like(inputs[i])
                canvas[:, top:top + h, left:left + w] = inputs[i, :, :h, :w]
                inputs[i] = canvas
        if training:
            for sample in samples:
                self._convert(sample, (height, width))
        return data


@MODELS.register_module()
class HeldCFastGIoULoss(nn.Module):
    """GIoU loss on aligned pairs with mmdet's ``bbox_overlaps``.

    BUG: the overlap is computed under ``torch.no_grad()`` (copied from
    the matcher's cost code): the term has a value but no gradient.
    """

    def __init__(self, loss_weight: float = 1.0, eps: float = 1e-6) -> None:
        super().__init__()
        self.loss_weight = loss_weight
        self.eps = eps

    def forward(self, pred: torch.Tensor, target: torch.Tensor,
                avg_factor=None) -> torch.Tensor:
        with torch.no_grad():
            giou = bbox_overlaps(
                pred, target, mode='giou', is_aligned=True, eps=self.eps)
        loss = (1 - giou).sum()
        if avg_factor is not None:
            loss = loss / avg_factor
        return loss * self.loss_weight


@MODELS.register_module()
class HeldCBF16RTDETR(RTDETR):
    """RT-DETR with its weights kept in bfloat16 to halve their memory
    (the criterion runs in an FP32 region anyway).

    BUG: the optimizer then updates bf16 weights directly: an update
    smaller than ~1/256 of a weight rounds away, and with RT-DETR's small
    lr (4e-6 at the start of the warm-up) almost no weight ever changes.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.to(torch.bfloat16)

    def extract_feat(self, inputs: torch.Tensor):
        return super().extract_feat(inputs.to(torch.bfloat16))
