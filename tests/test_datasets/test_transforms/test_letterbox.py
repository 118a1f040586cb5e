"""LetterBox: centred padding, box shift, and its inverse."""
import numpy as np
import pytest
import torch
from mmdet.structures.bbox import HorizontalBoxes

from engine_plugins.datasets.transforms import LetterBox
from engine_plugins.structures.box_frames import boxes_to_original_image


def _results(height, width, boxes):
    return dict(
        img=np.zeros((height, width, 3), np.uint8),
        img_shape=(height, width),
        ori_shape=(height, width),
        gt_bboxes=HorizontalBoxes(torch.tensor(boxes, dtype=torch.float32)))


def test_wide_image_is_scaled_and_padded_top_and_bottom():
    # 200x100 (w x h) into 64x64: ratio 0.32 -> 64x32, 16 rows above and
    # below. Box (50, 20, 150, 80) -> (16, 6.4, 48, 25.6) + (0, 16).
    out = LetterBox(scale=(64, 64))(_results(100, 200, [[50, 20, 150, 80]]))
    assert out['img'].shape == (64, 64, 3)
    assert out['img_shape'] == (64, 64)
    np.testing.assert_array_equal(out['pad_param'], [16, 16, 0, 0])
    assert out['scale_factor'] == pytest.approx((0.32, 0.32))
    torch.testing.assert_close(out['gt_bboxes'].tensor,
                               torch.tensor([[16.0, 22.4, 48.0, 41.6]]))
    # The border is the pad value, the image area is the (black) image.
    assert out['img'][0, 0, 0] == 114 and out['img'][32, 32, 0] == 0


def test_odd_padding_and_no_scale_up():
    # 30x20 into 64x63 without enlarging: pad 43 rows (21 + 22) and 34
    # columns (17 + 17).
    out = LetterBox(scale=(64, 63), allow_scale_up=False)(
        _results(20, 30, [[0, 0, 30, 20]]))
    assert out['img'].shape == (63, 64, 3)
    np.testing.assert_array_equal(out['pad_param'], [21, 22, 17, 17])
    assert out['scale_factor'] == (1.0, 1.0)
    torch.testing.assert_close(out['gt_bboxes'].tensor,
                               torch.tensor([[17.0, 21.0, 47.0, 41.0]]))


def test_inverse_recovers_original_boxes():
    box = [[50.0, 20.0, 150.0, 80.0]]
    out = LetterBox(scale=(64, 64))(_results(100, 200, box))
    meta = dict(
        pad_param=out['pad_param'],
        scale_factor=out['scale_factor'],
        ori_shape=(100, 200))
    torch.testing.assert_close(
        boxes_to_original_image(out['gt_bboxes'].tensor, meta),
        torch.tensor(box))


def test_bad_scale_is_named():
    with pytest.raises(ValueError, match='scale must be'):
        LetterBox(scale=(64, ))
