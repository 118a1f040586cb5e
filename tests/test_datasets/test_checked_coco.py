"""CheckedCocoDataset: each problem of a COCO file, made for real on small
files, named at load time; the registry shadowing; --strict-data."""
import json
import logging

import cv2
import numpy as np
import pytest
from mmdet.datasets import CocoDataset
from mmengine.logging import MMLogger
from mmengine.registry import DATASETS as ROOT_DATASETS
from mmengine.registry import DefaultScope

from engine_plugins.datasets.checked_coco import (CheckedCocoDataset,
                                                  DataCheckError)
from engine_plugins.datasets.demo_shapes import DemoShapesDataset
from engine_plugins.utils.config_loading import set_data_check
from tests.tool_loading import load_tool

CLASSES = ('cat', 'dog')
CATEGORIES = [
    dict(id=1, name='cat'),
    dict(id=2, name='dog'),
    dict(id=3, name='bird')
]
# a.png is 100 wide, 80 high; b.png 60 x 50.
IMAGES = [
    dict(id=1, file_name='a.png', width=100, height=80),
    dict(id=2, file_name='b.png', width=60, height=50)
]


def _ann(ann_id, bbox, image_id=1, category_id=1, **extra):
    ann = dict(
        id=ann_id,
        image_id=image_id,
        category_id=category_id,
        bbox=bbox,
        iscrowd=0)
    if isinstance(bbox, list) and len(bbox) == 4:
        ann['area'] = 1.0
    ann.update(extra)
    return ann


# Four boxes that train; the last reaches 0.5 px past b.png's right edge,
# within the 1 px tolerance.
VALID = [
    _ann(1, [10, 10, 20, 30]),
    _ann(2, [50, 20, 40, 50], category_id=2),
    _ann(3, [0, 0, 60, 50], image_id=2, category_id=2),
    _ann(4, [30, 30, 30.5, 20], image_id=2),
]


def _write(tmp_path, content=None, images=IMAGES):
    """Images under tmp_path/img/ and the annotation file tmp_path/ann.json
    (``content``: a dict to dump or the text itself)."""
    (tmp_path / 'img').mkdir(exist_ok=True)
    for img in images:
        cv2.imwrite(
            str(tmp_path / 'img' / img['file_name']),
            np.full((img['height'], img['width'], 3), 128, np.uint8))
    if content is None:
        content = dict(images=images, annotations=VALID, categories=CATEGORIES)
    if not isinstance(content, str):
        content = json.dumps(content)
    (tmp_path / 'ann.json').write_text(content)


def _build(tmp_path, **kwargs):
    cfg = dict(
        data_root=str(tmp_path),
        ann_file='ann.json',
        data_prefix=dict(img='img/'),
        metainfo=dict(classes=CLASSES),
        pipeline=[])
    cfg.update(kwargs)
    return CheckedCocoDataset(**cfg)


def _with(tmp_path, annotations, **kwargs):
    _write(tmp_path,
           dict(images=IMAGES, annotations=annotations, categories=CATEGORIES))
    return _build(tmp_path, **kwargs)


def _infos(dataset):
    return [dataset.get_data_info(i) for i in range(len(dataset))]


@pytest.fixture
def log_lines():
    logger = MMLogger.get_current_instance()
    lines = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    logger.addHandler(handler)
    yield lines
    logger.removeHandler(handler)


def test_a_valid_file_loads_exactly_its_boxes(tmp_path, log_lines):
    _write(tmp_path)
    dataset = _build(tmp_path)
    got = [(info['img_path'], [(i['bbox'], i['bbox_label'], i['ignore_flag'])
                               for i in info['instances']])
           for info in _infos(dataset)]
    # xywh -> xyxy by hand; labels are positions in CLASSES.
    assert got == [
        (str(tmp_path / 'img' / 'a.png'), [([10, 10, 30, 40], 0, 0),
                                           ([50, 20, 90, 70], 1, 0)]),
        (str(tmp_path / 'img' / 'b.png'), [([0, 0, 60, 50], 1, 0),
                                           ([30, 30, 60.5, 50], 0, 0)]),
    ]
    report = dataset.drop_report
    assert report['invalid'] == report['dropped'] == {}
    assert (report['num_images'], report['num_boxes']) == (2, 4)
    assert any('2 images and 4 boxes to use, from 4 annotations' in line
               for line in log_lines)


def test_missing_file_and_data_root_name_the_config_key(tmp_path):
    _write(tmp_path)
    with pytest.raises(FileNotFoundError) as err:
        _build(tmp_path, ann_file='gone.json')
    assert str(tmp_path / 'gone.json') in str(err.value)
    assert "ann_file='gone.json'" in str(err.value)
    with pytest.raises(FileNotFoundError, match="data_root '.*nowhere'"):
        _build(tmp_path, data_root=str(tmp_path / 'nowhere'))


def test_not_json_names_file_line_and_column(tmp_path):
    _write(tmp_path, '{"images": [\n  {"id": 1,, "width": 3}]}')
    with pytest.raises(DataCheckError) as err:
        _build(tmp_path)
    assert str(tmp_path / 'ann.json') in str(err.value)
    # The second comma of line 2, 12th character.
    assert 'line 2, column 12' in str(err.value)


def test_top_level_not_an_object(tmp_path):
    _write(tmp_path, '[1, 2]')
    with pytest.raises(DataCheckError, match='top level is a list'):
        _build(tmp_path)


@pytest.mark.parametrize('key', ['images', 'annotations', 'categories'])
def test_each_missing_key_is_named(tmp_path, key):
    content = dict(images=IMAGES, annotations=VALID, categories=CATEGORIES)
    del content[key]
    _write(tmp_path, content)
    with pytest.raises(DataCheckError, match=f"ann.json: no '{key}' key"):
        _build(tmp_path)


def test_an_image_info_file_without_annotations_loads_for_testing(tmp_path):
    _write(tmp_path, dict(images=IMAGES, categories=CATEGORIES))
    dataset = _build(tmp_path, test_mode=True)
    assert len(dataset) == 2 and dataset.drop_report['num_boxes'] == 0


@pytest.mark.parametrize(
    'bad, key, value',
    [
        (dict(bbox=[10, 10, 20]), 'bbox_format', 'bbox=[10, 10, 20]'),
        (dict(bbox=[10, '10', 5, 5]), 'bbox_format', 'bbox=[10, "10"'),
        (dict(bbox=None), 'bbox_format', 'bbox=missing'),
        (dict(bbox=[10, 10, -5, 20]), 'bbox_size', 'bbox=[10, 10, -5, 20]'),
        (dict(bbox=[10, 10, 0, 20]), 'bbox_size', 'bbox=[10, 10, 0, 20]'),
        # 10 px past the right edge: mmdet would keep it, unclipped.
        (dict(bbox=[90, 10, 20, 20]), 'bbox_outside',
         'bbox=[90, 10, 20, 20] in a 100x80 image'),
        (dict(bbox=[-3, 10, 20, 20]), 'bbox_outside', 'bbox=[-3, 10, 20'),
        (dict(area=0), 'area', 'area=0'),
        (dict(area=None), 'area', 'area=missing'),
        (dict(category_id=9), 'category_id', 'category_id=9'),
        (dict(image_id=99), 'image_id', 'image_id=99'),
    ])
def test_each_invalid_annotation_is_counted_and_named(tmp_path, bad, key,
                                                      value):
    ann = _ann(7, [10, 10, 20, 20])
    ann.update(bad)
    if ann['area'] is None:
        del ann['area']
    dataset = _with(tmp_path, VALID + [ann])
    report = dataset.drop_report
    assert report['invalid'] == {key: 1}
    assert report['examples'][key][0].startswith(f'annotation id 7: {value}')
    # Dropped; the four valid boxes remain.
    assert report['num_boxes'] == 4
    with pytest.raises(DataCheckError) as err:
        _with(tmp_path, VALID + [ann], data_check='strict')
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'ann.json'} (data_check="
                              "'strict'): 1 of 5 annotations")
    assert f'annotation id 7: {value}' in message


def test_crowd_tiny_and_unconfigured_classes_are_counted(tmp_path, log_lines):
    extra = [
        _ann(11, [10, 10, 20, 20], iscrowd=1),
        _ann(12, [10, 10, 0.5, 20]),
        _ann(13, [10, 10, 20, 0.9]),
        _ann(14, [10, 10, 20, 20], category_id=3),  # bird: not configured
    ]
    dataset = _with(tmp_path, VALID + extra)
    report = dataset.drop_report
    assert report['invalid'] == {}
    assert report['dropped'] == dict(tiny=2, unselected_class=1, iscrowd=1)
    # The crowd box stays, as an ignored region.
    flags = [i['ignore_flag'] for i in _infos(dataset)[0]['instances']]
    assert sorted(flags) == [0, 0, 1]
    assert report['num_boxes'] == 4
    line = next(line for line in log_lines if 'boxes to use' in line)
    assert ('left out by design: width or height under 1 px: 2, category '
            'not among the configured classes: 1, iscrowd (kept as an '
            'ignored region): 1') in line
    with pytest.raises(DataCheckError) as err:
        _with(tmp_path, VALID + extra, data_check='strict')
    message = str(err.value)
    assert '3 of 8 annotations' in message
    assert 'width or height under 1 px: 2 (annotation id 12: bbox=' in message
    # Crowd boxes are kept (as ignored regions): strict does not refuse
    # them, so COCO itself passes --strict-data.
    assert 'iscrowd' not in message
    crowd_only = _with(tmp_path, VALID + extra[:1], data_check='strict')
    assert crowd_only.drop_report['dropped'] == dict(iscrowd=1)


def test_missing_and_empty_images_are_errors_in_both_modes(tmp_path):
    _write(tmp_path)
    (tmp_path / 'img' / 'b.png').unlink()
    for mode in ('report', 'strict'):
        with pytest.raises(DataCheckError) as err:
            _build(tmp_path, data_check=mode)
        assert f"1 missing ({tmp_path / 'img' / 'b.png'})" in str(err.value)
    (tmp_path / 'img' / 'b.png').write_bytes(b'')
    with pytest.raises(DataCheckError, match='1 empty, 0 bytes .*b.png'):
        _build(tmp_path)
    with pytest.raises(DataCheckError, match='folder .*pics.* does not exist'):
        _build(tmp_path, data_prefix=dict(img='pics/'))


def test_no_box_left_is_an_error_with_the_counts_and_a_hint(tmp_path):
    # Normalized xywh: every box is under a pixel, so mmdet keeps none.
    anns = [
        _ann(1, [0.1, 0.1, 0.2, 0.3]),
        _ann(2, [0.5, 0.2, 0.4, 0.5], image_id=2)
    ]
    with pytest.raises(DataCheckError) as err:
        _with(tmp_path, anns)
    message = str(err.value)
    assert 'ann.json: no box left to train on' in message
    assert 'width or height under 1 px: 2' in message
    assert 'read as normalized xywh' in message


def test_no_image_left_and_image_filters_are_counted(tmp_path):
    dataset = _with(tmp_path, VALID[:2], filter_cfg=dict(filter_empty_gt=True))
    assert dataset.drop_report['images_dropped'] == {'no_annotations': 1}
    with pytest.raises(DataCheckError, match='no image left.*min_size: 2'):
        _with(tmp_path, VALID, filter_cfg=dict(min_size=200))
    # Strict: the boxes on the images filtered for their size are lost.
    with pytest.raises(DataCheckError, match='2 boxes are on 1 images'):
        _with(
            tmp_path, VALID, filter_cfg=dict(min_size=55), data_check='strict')


def test_structural_problems(tmp_path):
    dup = VALID + [_ann(4, [1, 1, 5, 5])]
    with pytest.raises(DataCheckError, match='1 duplicate ids in annotations'):
        _with(tmp_path, dup)
    images = [dict(IMAGES[0]), dict(IMAGES[1], width=0)]
    _write(
        tmp_path,
        dict(images=images, annotations=VALID, categories=CATEGORIES),
        images=IMAGES)
    with pytest.raises(DataCheckError, match=r'images\[1\] .*width=0'):
        _build(tmp_path)


def test_configured_classes_must_match_the_categories(tmp_path):
    _write(tmp_path)
    with pytest.raises(DataCheckError, match=r"classes \['cow'\] are not"):
        _build(tmp_path, metainfo=dict(classes=('cat', 'cow')))
    with pytest.raises(DataCheckError, match="as \\['cat', 'dog'\\], not"):
        _build(tmp_path, metainfo=dict(classes=('dog', 'cat')))


def test_wrong_policy_names_the_accepted_values(tmp_path):
    _write(tmp_path)
    with pytest.raises(ValueError, match=r"\('report', 'strict'\)"):
        _build(tmp_path, data_check='lenient')


def test_coco_dataset_resolves_to_the_checked_class_in_our_scope(tmp_path):
    _write(tmp_path)
    cfg = dict(
        type='CocoDataset',
        data_root=str(tmp_path),
        ann_file='ann.json',
        data_prefix=dict(img='img/'),
        metainfo=dict(classes=CLASSES),
        pipeline=[])
    with DefaultScope.overwrite_default_scope('engine_plugins'):
        dataset = ROOT_DATASETS.build(cfg)
    assert type(dataset) is CheckedCocoDataset
    with DefaultScope.overwrite_default_scope('mmdet'):
        assert type(ROOT_DATASETS.build(cfg)) is CocoDataset
    assert issubclass(DemoShapesDataset, CheckedCocoDataset)


CONFIG = """
default_scope = 'engine_plugins'
coco = dict(type='CocoDataset', ann_file='a.json', pipeline=[])
train_dataloader = dict(dataset=dict(
    type='ConcatDataset',
    datasets=[dict(type='RepeatDataset', times=2, dataset=coco),
              dict(type='DemoShapesDataset')]))
val_dataloader = dict(dataset=dict(type='mmdet.CocoDataset'))
test_dataloader = dict(dataset=dict(type='FirstSamplesDataset',
                                    num_samples=2, dataset=coco))
"""


def test_strict_data_flag_sets_only_datasets_that_take_it(tmp_path):
    path = tmp_path / 'cfg.py'
    path.write_text(CONFIG)
    ckpt = tmp_path / 'x.pth'
    ckpt.write_bytes(b'')
    train = load_tool('train')
    cfg = train.build_cfg(train.parse_args([str(path), '--strict-data']))
    inner = cfg.train_dataloader.dataset.datasets
    assert inner[0].dataset.data_check == 'strict'
    assert inner[1].data_check == 'strict'
    assert 'data_check' not in inner[0]  # RepeatDataset takes none
    assert 'data_check' not in cfg.val_dataloader.dataset  # mmdet's class
    assert cfg.test_dataloader.dataset.dataset.data_check == 'strict'
    test = load_tool('test')
    cfg = test.build_cfg(
        test.parse_args([str(path), str(ckpt), '--strict-data']))
    assert cfg.test_dataloader.dataset.dataset.data_check == 'strict'
    cfg = train.build_cfg(train.parse_args([str(path)]))
    assert 'data_check' not in cfg.test_dataloader.dataset.dataset
    # Under mmdet's scope, 'CocoDataset' is mmdet's class: left alone.
    cfg.default_scope = 'mmdet'
    assert set_data_check(cfg, 'strict') == []
