"""Held-out set 3, PSALM YOLO: pipeline steps, a loss variant and an
optimizer constructor a user might add, each with one bug (``BUG``)."""
from typing import Dict, List, Sequence

import mmcv
import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.optim import DefaultOptimWrapperConstructor

from engine_plugins.models.yolo import YOLOv8DetLoss
from engine_plugins.registry import (MODELS, OPTIM_WRAPPER_CONSTRUCTORS,
                                     TRANSFORMS)


@TRANSFORMS.register_module()
class HeldCShuffleInstances(BaseTransform):
    """Randomize the order of the gt instances of an image (so that any
    later truncation to a maximum count is unbiased).

    BUG: permutes boxes and ignore flags but not ``gt_bboxes_labels``:
    in every image with two or more objects the classes no longer belong
    to their boxes.
    """

    def transform(self, results: Dict) -> Dict:
        boxes = results.get('gt_bboxes')
        if boxes is None or len(boxes) < 2:
            return results
        order = np.random.permutation(len(boxes))
        results['gt_bboxes'] = boxes[order]
        if 'gt_ignore_flags' in results:
            results['gt_ignore_flags'] = results['gt_ignore_flags'][order]
        return results


@TRANSFORMS.register_module()
class HeldCTileResize(BaseTransform):
    """Resize every image to the mosaic tile size ``scale`` = (w, h), so
    the mosaic cache holds equal tiles.

    BUG: the box scale factors are passed as (h, w); mmdet's ``rescale_``
    takes (w, h). On the demo images (wider than high) boxes are
    stretched along x and squeezed along y relative to the image.
    """

    def __init__(self, scale: Sequence[int]) -> None:
        self.scale = (int(scale[0]), int(scale[1]))

    def transform(self, results: Dict) -> Dict:
        img = results['img']
        h, w = img.shape[:2]
        new_w, new_h = self.scale
        results['img'] = mmcv.imresize(img, (new_w, new_h))
        scale_h, scale_w = new_h / h, new_w / w
        if results.get('gt_bboxes') is not None:
            results['gt_bboxes'].rescale_((scale_h, scale_w))
        results['img_shape'] = (new_h, new_w)
        results['scale_factor'] = (scale_w, scale_h)
        return results


@TRANSFORMS.register_module()
class HeldCToUnitRange(BaseTransform):
    """Scale the image to [0, 1] in the pipeline, as torchvision's
    ``ToTensor`` does.

    BUG: casts the result back to the image's dtype (uint8): every pixel
    but pure white becomes 0, so the network sees blank images.
    """

    def transform(self, results: Dict) -> Dict:
        img = results['img']
        results['img'] = (img / 255.0).astype(img.dtype)
        return results


@MODELS.register_module()
class HeldCUltralyticsNamesLoss(YOLOv8DetLoss):
    """``YOLOv8DetLoss`` whose DFL term is logged under ultralytics' name.

    BUG: ``dfl`` has no ``loss`` in its name, so mmengine's
    ``parse_losses`` logs it but leaves it out of the optimized total.
    """

    def forward(self, *args, **kwargs) -> Dict[str, torch.Tensor]:
        losses = super().forward(*args, **kwargs)
        losses['dfl'] = losses.pop('loss_dfl')
        return losses


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class HeldCDedupOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """``DefaultOptimWrapperConstructor`` that drops parameters listed
    twice (tied weights), so the optimizer never steps a tensor twice.

    BUG: identifies a parameter by its shape and dtype instead of its
    identity: every parameter that shares a shape with an earlier one
    (most convs and norms of the network) is left out of the optimizer.
    """

    def add_params(self, params: List[dict], module, prefix: str = '',
                   is_dcn_module=None) -> None:
        super().add_params(params, module, prefix, is_dcn_module)
        if prefix:  # the recursion: dedupe once, at the top
            return
        seen, kept = set(), []
        for group in params:
            tensor = group['params'][0]
            key = (tuple(tensor.shape), tensor.dtype)
            if key in seen:
                continue
            seen.add(key)
            kept.append(group)
        params[:] = kept
