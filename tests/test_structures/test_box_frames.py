"""RT-DETR's one box conversion: round trips, the preprocessor converting
once in the padded frame, and pixel boxes caught at the criterion."""
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData

from engine_plugins.engine.sanity.preflight import TargetFormatError
from engine_plugins.models.rtdetr.rtdetr_data_preprocessor import \
    RTDETRDataPreprocessor
from engine_plugins.structures.box_frames import (
    check_normalized_cxcywh, normalized_cxcywh_to_pixel_xyxy,
    pixel_xyxy_to_normalized_cxcywh)


def test_known_box_converts_both_ways():
    # A 40x20 box at (10, 30) in a 100 (h) x 200 (w) frame: centre
    # (30, 40) -> (0.15, 0.4), size (0.2, 0.2).
    pixel = torch.tensor([[10.0, 30.0, 50.0, 50.0]])
    norm = pixel_xyxy_to_normalized_cxcywh(pixel, (100, 200))
    torch.testing.assert_close(norm, torch.tensor([[0.15, 0.4, 0.2, 0.2]]))
    torch.testing.assert_close(
        normalized_cxcywh_to_pixel_xyxy(norm, (100, 200)), pixel)


def test_random_boxes_round_trip():
    gen = torch.Generator().manual_seed(0)
    xy = torch.rand(50, 2, generator=gen) * 300
    boxes = torch.cat([xy, xy + torch.rand(50, 2, generator=gen) * 100], 1)
    back = normalized_cxcywh_to_pixel_xyxy(
        pixel_xyxy_to_normalized_cxcywh(boxes, (416, 480)), (416, 480))
    torch.testing.assert_close(back, boxes)


def test_pixel_boxes_are_named_as_pixel_boxes():
    with pytest.raises(TargetFormatError, match='looks like pixel') as err:
        check_normalized_cxcywh(
            torch.tensor([[0.5, 0.5, 0.1, 0.1], [960.0, 540, 100, 80]]),
            'gt boxes of image 2 (a.jpg)')
    assert 'image 2 (a.jpg), instance 1' in str(err.value)


def test_box_leaving_the_frame_is_caught_without_the_pixel_hint():
    # cx 0.95 with width 0.2 reaches x2 = 1.05.
    with pytest.raises(TargetFormatError, match='outside the image'):
        check_normalized_cxcywh(
            torch.tensor([[0.95, 0.5, 0.2, 0.2]]), 'gt')


def test_in_range_boxes_pass():
    check_normalized_cxcywh(torch.tensor([[0.5, 0.5, 1.0, 1.0]]), 'gt')
    check_normalized_cxcywh(torch.zeros(0, 4), 'gt')


def _batch():
    sample = DetDataSample(metainfo=dict(img_path='x.jpg'))
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor([[8.0, 4.0, 24.0, 20.0]]),
        labels=torch.tensor([1]))
    # 20 x 30 image; padded to 32 x 32.
    return dict(
        inputs=[torch.zeros(3, 20, 30, dtype=torch.uint8)],
        data_samples=[sample])


def test_preprocessor_normalizes_by_the_padded_batch_in_training_only():
    pre = RTDETRDataPreprocessor(pad_size_divisor=32)
    out = pre(_batch(), training=True)
    assert out['inputs'].shape[-2:] == (32, 32)
    # centre (16, 12), size (16, 16), all / 32.
    torch.testing.assert_close(out['data_samples'][0].gt_instances.bboxes,
                               torch.tensor([[0.5, 0.375, 0.5, 0.5]]))
    evaluated = pre(_batch(), training=False)
    torch.testing.assert_close(
        evaluated['data_samples'][0].gt_instances.bboxes,
        torch.tensor([[8.0, 4.0, 24.0, 20.0]]))


def test_preprocessor_refuses_to_convert_twice():
    pre = RTDETRDataPreprocessor(pad_size_divisor=32)
    out = pre(_batch(), training=True)
    again = dict(
        inputs=[torch.zeros(3, 20, 30, dtype=torch.uint8)],
        data_samples=out['data_samples'])
    with pytest.raises(RuntimeError, match='x.jpg.*twice'):
        pre(again, training=True)
