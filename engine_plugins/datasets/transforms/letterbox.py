"""Letterbox resize: keep the aspect ratio, pad to the target size with the
image centred."""
from typing import Sequence, Tuple

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform

from engine_plugins.registry import TRANSFORMS


@TRANSFORMS.register_module()
class LetterBox(BaseTransform):
    """Resize to fit ``scale`` with the aspect ratio kept, then pad evenly
    on both sides to exactly ``scale`` (YOLO's letterbox).

    mmdet's ``Resize`` + ``Pad`` pad only bottom and right; centring keeps
    objects away from one padded border and matches YOLO inference. The
    padding is recorded as ``pad_param`` (top, bottom, left, right), which
    ``PSALMDualHead.predict`` subtracts before dividing by
    ``scale_factor``, so add ``'pad_param'`` to ``PackDetInputs``'s
    ``meta_keys``.

    Required keys: ``img``. Modified: ``img``, ``img_shape``,
    ``gt_bboxes`` (if present). Added: ``scale_factor``, ``pad_param``,
    ``keep_ratio``.

    Args:
        scale: Target ``(width, height)``.
        pad_val: Fill value of the border. Defaults to 114 (YOLO grey).
        allow_scale_up: Whether smaller images are enlarged. With False
            they are only padded, as YOLO does at test time.

    Example:
        >>> pipeline = [
        ...     dict(type='LoadImageFromFile'),
        ...     dict(type='LetterBox', scale=(640, 640)),
        ...     dict(type='LoadAnnotations', with_bbox=True),
        ...     dict(type='PackDetInputs', meta_keys=(
        ...         'img_id', 'img_path', 'ori_shape', 'img_shape',
        ...         'scale_factor', 'pad_param'))]
    """

    def __init__(self,
                 scale: Sequence[int],
                 pad_val: int = 114,
                 allow_scale_up: bool = True) -> None:
        if len(scale) != 2:
            raise ValueError(f'LetterBox: scale must be (width, height), '
                             f'got {scale}')
        self.scale: Tuple[int, int] = (int(scale[0]), int(scale[1]))
        self.pad_val = pad_val
        self.allow_scale_up = allow_scale_up

    def transform(self, results: dict) -> dict:
        img = results['img']
        height, width = img.shape[:2]
        target_w, target_h = self.scale
        ratio = min(target_w / width, target_h / height)
        if not self.allow_scale_up:
            ratio = min(ratio, 1.0)
        new_w, new_h = round(width * ratio), round(height * ratio)
        if (new_w, new_h) != (width, height):
            img = mmcv.imresize(img, (new_w, new_h), interpolation='bilinear')
        top = (target_h - new_h) // 2
        left = (target_w - new_w) // 2
        bottom, right = target_h - new_h - top, target_w - new_w - left
        img = mmcv.impad(
            img, padding=(left, top, right, bottom), pad_val=self.pad_val)

        scale = (new_w / width, new_h / height)
        if results.get('gt_bboxes') is not None:
            results['gt_bboxes'].rescale_(scale)
            results['gt_bboxes'].translate_([left, top])
        # Compose with any earlier resize, as mmdet's Resize does.
        previous = results.get('scale_factor', (1.0, 1.0))
        results['scale_factor'] = (previous[0] * scale[0],
                                   previous[1] * scale[1])
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['pad_param'] = np.array([top, bottom, left, right],
                                        dtype=np.float32)
        results['keep_ratio'] = True
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(scale={self.scale}, '
                f'pad_val={self.pad_val}, '
                f'allow_scale_up={self.allow_scale_up})')
