"""Overfit two demo images through the normal Runner: the loss falls by at
least 80% and the two images are then detected with COCO mAP50 >= 0.9."""
import os.path as osp

import pytest

from tests.test_models.overfit_demo import overfit_two_images

REPO = osp.dirname(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
QUICK_START = osp.join(REPO, 'configs', 'rtdetr', 'rtdetr_r18_shapes_cpu.py')


@pytest.mark.slow
def test_two_images_are_memorised(tmp_path):
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='Resize', scale=(128, 128), keep_ratio=True),
        dict(
            type='PackDetInputs',
            meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                       'scale_factor')),
    ]
    start, end, metrics = overfit_two_images(QUICK_START, tmp_path, pipeline,
                                             'rtdetr_overfit')
    assert end <= 0.2 * start, (start, end)
    assert metrics['coco/bbox_mAP_50'] >= 0.9, metrics
