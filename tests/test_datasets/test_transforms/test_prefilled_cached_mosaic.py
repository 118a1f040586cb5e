"""PrefilledCachedMosaic: a 2x mosaic from the very first image."""
import numpy as np
import pytest
from mmdet.datasets.transforms import CachedMosaic
from mmdet.structures.bbox import HorizontalBoxes

from engine_plugins.datasets.transforms import PrefilledCachedMosaic


def _results():
    img = np.full((48, 80, 3), 7, np.uint8)
    return dict(
        img=img,
        img_shape=img.shape[:2],
        gt_bboxes=HorizontalBoxes(np.array([[8, 8, 72, 40]], np.float32)),
        gt_bboxes_labels=np.array([1]),
        gt_ignore_flags=np.array([False]))


def test_first_output_is_already_a_mosaic():
    # mmdet's CachedMosaic passes the first images through unchanged...
    plain = CachedMosaic(img_scale=(64, 64), max_cached_images=10)
    assert plain(_results())['img'].shape == (48, 80, 3)
    # ... ours returns the 2x canvas with a box from each tile (the same
    # image four times: the box's label four times).
    out = PrefilledCachedMosaic(img_scale=(64, 64), max_cached_images=10)(
        _results())
    assert out['img'].shape == (128, 128, 3)
    assert out['gt_bboxes_labels'].tolist() == [1, 1, 1, 1]


def test_partial_probability_is_refused():
    with pytest.raises(ValueError, match='prob must be 1.0'):
        PrefilledCachedMosaic(img_scale=(64, 64), prob=0.5)
