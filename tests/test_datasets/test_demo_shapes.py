"""The demo shapes generator and dataset."""
import json
import os.path as osp

import numpy as np
import pytest
from mmengine.registry import init_default_scope

from engine_plugins.datasets.demo_shapes import (SHAPE_CLASSES, render_image,
                                                 write_demo_shapes)
from engine_plugins.registry import DATASETS

SMALL = dict(num_train=12, num_val=4, empty_ratio=0.25, seed=3)


def _load(root, split):
    with open(osp.join(root, 'annotations', f'{split}.json')) as f:
        return json.load(f)


def test_annotations_are_valid_coco(tmp_path):
    root = str(tmp_path / 'shapes')
    write_demo_shapes(root, **SMALL)
    coco = _load(root, 'train')
    assert [c['name'] for c in coco['categories']] == list(SHAPE_CLASSES)
    assert len(coco['images']) == 12
    sizes = {i['id']: (i['width'], i['height']) for i in coco['images']}
    for ann in coco['annotations']:
        x, y, w, h = ann['bbox']
        width, height = sizes[ann['image_id']]
        assert 0 <= x and 0 <= y and x + w <= width and y + h <= height
        assert w >= 8 and h >= 8 and ann['area'] == w * h
        assert 1 <= ann['category_id'] <= 3
    with_objects = {a['image_id'] for a in coco['annotations']}
    # Background-only images exist (seed 3: checked to include some).
    assert 0 < len(with_objects) < len(coco['images'])
    assert len(_load(root, 'val')['images']) == 4


def test_same_settings_same_files_and_mismatch_is_named(tmp_path):
    a, b = str(tmp_path / 'a'), str(tmp_path / 'b')
    write_demo_shapes(a, **SMALL)
    write_demo_shapes(b, **SMALL)
    assert _load(a, 'train') == _load(b, 'train')
    write_demo_shapes(a, **SMALL)  # present: nothing to do
    with pytest.raises(ValueError, match='other settings'):
        write_demo_shapes(a, **dict(SMALL, seed=4))
    with pytest.raises(ValueError, match=r"unknown settings \['colour'\]"):
        write_demo_shapes(a, colour=1)
    other = tmp_path / 'other'
    other.mkdir()
    (other / 'x.txt').write_text('mine')
    with pytest.raises(ValueError, match='is not demo shapes data'):
        write_demo_shapes(str(other))


def test_drawn_shapes_fill_their_boxes():
    rng = np.random.default_rng(0)
    img, objects = render_image(rng, 96, 128, 3, max_iou=0.0)
    assert img.shape == (96, 128, 3) and len(objects) >= 1
    for cls, (x1, y1, x2, y2) in objects:
        cx, cy = (x1 + x2) // 2, (y1 + y2) // 2
        # Shapes are drawn in one flat colour over a noisy background, so
        # the 3x3 patch at the box centre (inside all three shapes) is
        # constant.
        patch = img[cy - 1:cy + 2, cx - 1:cx + 2].reshape(-1, 3)
        assert (patch == patch[0]).all(), SHAPE_CLASSES[cls]


def test_dataset_writes_on_first_use(tmp_path):
    init_default_scope('engine_plugins')
    root = str(tmp_path / 'shapes') + '/'
    dataset = DATASETS.build(
        dict(
            type='DemoShapesDataset',
            data_root=root,
            generate=SMALL,
            ann_file='annotations/train.json',
            data_prefix=dict(img='train/'),
            pipeline=[]))
    assert len(dataset) == 12
    assert dataset.metainfo['classes'] == SHAPE_CLASSES
    info = dataset[0]
    assert osp.exists(info['img_path'])
