"""Overfit two demo images through the normal Runner: the loss falls by at
least 80% and the two images are then detected with COCO mAP50 >= 0.9."""
import os.path as osp

import pytest

from tests.test_models.overfit_demo import overfit_two_images

REPO = osp.dirname(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
QUICK_START = osp.join(REPO, 'configs', 'psalm_yolo',
                       'psalm_yolo_n_shapes_cpu.py')


@pytest.mark.slow
def test_two_images_are_memorised(tmp_path):
    # Boxes are loaded first, so LetterBox moves them into the network
    # frame.
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='LetterBox', scale=(128, 128)),
        dict(
            type='PackDetInputs',
            meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                       'scale_factor', 'pad_param')),
    ]
    start, end, metrics = overfit_two_images(QUICK_START, tmp_path, pipeline,
                                             'psalm_yolo_overfit')
    assert end <= 0.2 * start, (start, end)
    assert metrics['coco/bbox_mAP_50'] >= 0.9, metrics
