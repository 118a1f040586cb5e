"""Annotation audit: the boxes and labels as loaded, before augmentation."""
import json

import numpy as np
import pytest
from mmdet.datasets import CocoDataset

from engine_plugins.datasets import FirstSamplesDataset
from engine_plugins.engine.sanity.annotation_audit import (audit_dataset,
                                                           best_reading)
from engine_plugins.engine.sanity.errors import TargetFormatError
from engine_plugins.engine.sanity.events import SanityEvents

CLASSES = ('a', 'b', 'c')
# Four 100 x 80 images, three boxes each (one per class), as pixel corners
# x1, y1, x2, y2.
CORNERS = [[10, 10, 40, 30], [50, 20, 90, 70], [60, 2, 95, 15]]


def _coco(tmp_path,
          convert,
          cat_offset=1,
          name='ann.json',
          serialize=True,
          annotated=range(4)):
    images = [
        dict(id=i, file_name=f'{i}.jpg', width=100, height=80)
        for i in range(4)
    ]
    anns = []
    for i in annotated:
        for j, box in enumerate(CORNERS):
            anns.append(
                dict(
                    id=len(anns) + 1,
                    image_id=i,
                    bbox=convert(box),
                    area=100.0,
                    iscrowd=0,
                    category_id=j + cat_offset))
    cats = [dict(id=k + 1, name=n) for k, n in enumerate(CLASSES)]
    path = tmp_path / name
    path.write_text(
        json.dumps(dict(images=images, annotations=anns, categories=cats)))
    return CocoDataset(
        ann_file=str(path),
        data_prefix=dict(img=str(tmp_path) + '/'),
        metainfo=dict(classes=CLASSES),
        pipeline=[],
        filter_cfg=None,
        lazy_init=False,
        serialize_data=serialize)


def xywh(b):
    return [b[0], b[1], b[2] - b[0], b[3] - b[1]]


def _audit(dataset, **kwargs):
    events = SanityEvents()
    audit_dataset(dataset, 3, events, **kwargs)
    return events


def test_clean_coco_file_passes_silently(tmp_path):
    events = _audit(FirstSamplesDataset(_coco(tmp_path, xywh), 4))
    assert events.events == []


def test_the_audit_returns_the_fraction_of_images_with_boxes(tmp_path):
    dataset = _coco(tmp_path, xywh, annotated=[0, 2, 3])
    assert audit_dataset(dataset, 3, SanityEvents()) == 0.75


def test_corner_boxes_in_a_coco_file_are_named_as_xyxy(tmp_path):
    # COCO wants [x, y, w, h]; a file with corners makes mmdet build
    # x2 = x1 + x2: the second and third boxes leave the 100 x 80
    # image. Reading the stored values as corners makes every box valid.
    with pytest.raises(TargetFormatError) as err:
        _audit(_coco(tmp_path, lambda b: list(b)))
    message = str(err.value)
    assert message.startswith(
        f'annotation audit of {tmp_path / "ann.json"}: 66.7% of 12 boxes are '
        f'invalid as loaded (first: {tmp_path}/0.jpg, instance 1, xyxy [50, '
        '20, 140, '
        '90] in a 100x80 image')
    assert message.endswith(
        'read as xyxy, 100.0% are valid: the annotations hold xyxy boxes '
        'where COCO expects pixel [x, y, w, h]')
    assert err.value.cause == 'annotation_format'


def test_normalized_boxes_dropped_by_mmdet_are_explained(tmp_path):
    # w, h < 1 pixel: mmdet's CocoDataset drops every box while loading.
    def normalized(b):
        x, y, w, h = xywh(b)
        return [x / 100, y / 80, w / 100, h / 80]

    with pytest.raises(TargetFormatError) as err:
        _audit(_coco(tmp_path, normalized))
    message = str(err.value)
    assert 'mmdet dropped 100.0% of the 12 annotations while loading' in \
        message
    assert message.endswith(
        'read as normalized xywh, 100.0% of the boxes are valid: the file '
        'stores normalized xywh boxes where COCO expects pixel '
        '[x, y, w, h]')


def test_labels_outside_the_classes_stop_and_1_based_ids_are_named(tmp_path):
    dataset = _coco(tmp_path, xywh, serialize=False)
    for info in dataset.data_list:  # a custom dataset with 1-based labels
        for inst in info['instances']:
            inst['bbox_label'] += 1
    with pytest.raises(TargetFormatError) as err:
        _audit(dataset)
    assert err.value.cause == 'label_range'
    assert 'the labels run 1..num_classes: they are 1-based' in str(err.value)


def test_a_few_bad_boxes_warn_below_the_threshold(tmp_path):
    dataset = _coco(tmp_path, xywh, serialize=False)
    dataset.data_list[0]['instances'][0]['bbox'] = [10, 10, 140, 30]
    events = _audit(dataset, max_invalid=0.5)
    assert [e['kind'] for e in events.events] == ['warning']
    assert '8.3% of 12 boxes are invalid' in events.events[0]['message']


def test_best_reading_on_hand_made_boxes():
    wh = np.array([[100.0, 80.0]] * 2)
    centre = np.array([[25.0, 20.0, 30.0, 20.0], [70.0, 45.0, 40.0, 50.0]])
    name, fraction, _ = best_reading(centre, wh)
    assert (name, fraction) == ('cxcywh', 1.0)


def test_images_of_another_size_than_annotated_are_named(tmp_path):
    import cv2
    dataset = _coco(tmp_path, xywh, serialize=False)
    for info in dataset.data_list:  # re-saved at half the size
        cv2.imwrite(info['img_path'], np.zeros((40, 50, 3), np.uint8))
    with pytest.raises(TargetFormatError) as err:
        _audit(dataset)
    assert 'loads as 50x40 but is annotated as 100x80 (scale 0.5): the ' \
        'boxes refer to another version of the images' in str(err.value)


def test_annotations_all_marked_crowd_are_named(tmp_path):
    dataset = _coco(tmp_path, xywh, serialize=False)
    for info in dataset.data_list:
        for inst in info['instances']:
            inst['ignore_flag'] = 1
    with pytest.raises(TargetFormatError) as err:
        _audit(dataset)
    assert err.value.cause == 'label_mask'
    assert '12 of the 12 boxes are marked as crowd / ignored' in str(
        err.value)
