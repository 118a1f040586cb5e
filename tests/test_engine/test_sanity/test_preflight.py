"""Preflight checks: batch contract, detection targets, loss start."""
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData

from engine_plugins.engine.sanity.preflight import (BatchContractError,
                                                    LossRangeError,
                                                    TargetFormatError,
                                                    check_batch_contract,
                                                    check_detection_targets,
                                                    check_loss_start)


def _sample(boxes, labels, shape=(64, 96), path='img_7.jpg'):
    sample = DetDataSample(metainfo=dict(img_shape=shape, img_path=path))
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor(boxes, dtype=torch.float32),
        labels=torch.tensor(labels))
    return sample


def test_batch_contract_missing_empty_and_unused():
    data = dict(input_ids=torch.ones(2, 5), attention_mask=torch.ones(2, 5))
    with pytest.raises(BatchContractError) as err:
        check_batch_contract(data, ('input_ids', 'label_ids'))
    assert str(err.value).startswith(
        "the model requires batch keys ['label_ids'] but the batch has only "
        "['attention_mask', 'input_ids']")
    data['label_ids'] = torch.zeros(0, 8)
    with pytest.raises(BatchContractError, match=r'label_ids \(0, 8\)'):
        check_batch_contract(data, ('input_ids', 'label_ids'))
    data['label_ids'] = torch.ones(2, 5)
    assert check_batch_contract(
        data, ('input_ids', 'label_ids')) == ('attention_mask', )
    assert check_batch_contract(data, ('input_ids', 'label_ids'),
                                ('attention_mask', )) == ()


def test_label_equal_to_num_classes_is_named_as_background():
    sample = _sample([[1, 2, 10, 20], [5, 5, 9, 9]], [0, 3])
    with pytest.raises(TargetFormatError) as err:
        check_detection_targets([sample], 3, 'xyxy_pixel')
    assert str(err.value) == (
        'img_7.jpg, instance 1: label 3 is outside [0, 3) (== num_classes: '
        'background must be left to the loss, not encoded as a class index; '
        'or the ids are 1-based)')
    assert err.value.cause == 'label_range'


def test_negative_label_is_named_as_an_ignore_label():
    with pytest.raises(TargetFormatError, match='label -1 is outside '
                       r'\[0, 3\) \(negative: an "ignore" label'):
        check_detection_targets([_sample([[1, 2, 10, 20]], [-1])], 3,
                                'xyxy_pixel')


def test_normalized_boxes_for_a_pixel_loss_and_vice_versa():
    norm = _sample([[0.1, 0.2, 0.5, 0.6]], [1])
    with pytest.raises(TargetFormatError, match='look normalized'):
        check_detection_targets([norm], 3, 'xyxy_pixel')
    pixels = _sample([[40.0, 30.0, 20.0, 10.0]], [1])
    with pytest.raises(TargetFormatError, match='looks like pixel'):
        check_detection_targets([pixels], 3, 'cxcywh_normalized')
    check_detection_targets([_sample([[0.5, 0.5, 0.2, 0.1]], [2])], 3,
                            'cxcywh_normalized')


def test_inverted_and_outside_boxes():
    with pytest.raises(TargetFormatError, match='x2 < x1'):
        check_detection_targets([_sample([[50, 10, 40, 20]], [0])], 3,
                                'xyxy_pixel')
    # 96 px wide input; x2 = 120 is outside.
    with pytest.raises(TargetFormatError, match='outside the 64x96'):
        check_detection_targets([_sample([[50, 10, 120, 20]], [0])], 3,
                                'xyxy_pixel')
    check_detection_targets([_sample([[0, 0, 96, 64]], [2])], 3,
                            'xyxy_pixel')


def test_loss_at_clamp_limit_raises_and_far_out_warns():
    with pytest.raises(LossRangeError) as err:
        check_loss_start(dict(loss_dfl=torch.tensor(10.0)),
                         dict(loss_dfl=(1.0, 4.0)), dict(loss_dfl=10.0))
    assert str(err.value).startswith(
        'loss_dfl = 10 sits at its clamp limit 10 on the first iteration; '
        'it should start near (1.0, 4.0)')
    far = check_loss_start(
        dict(loss_cls=torch.tensor(500.0), loss_box=torch.tensor(2.0)),
        dict(loss_cls=(0.5, 2.0), loss_box=(1.0, 3.0)))
    assert list(far) == ['loss_cls']


def test_inverted_boxes_name_the_format_they_read_correctly_as():
    # (x, y, w, h) = (30, 20, 10, 8) is valid xywh in a 96 x 64 image; as
    # xyxy, x2 = 10 < x1 = 30.
    with pytest.raises(TargetFormatError) as err:
        check_detection_targets([_sample([[30, 20, 10, 8]], [0])], 3,
                                'xyxy_pixel')
    assert str(err.value) == (
        'img_7.jpg, instance 0: box [30.0, 20.0, 10.0, 8.0] has x2 < x1 or '
        'y2 < y1: not xyxy: they read correctly as xywh or cxcywh')


def test_boxes_left_in_the_original_frame_are_named():
    sample = _sample([[100, 10, 180, 60]], [0])  # fits 200 x 150, not 96
    sample.set_metainfo(dict(ori_shape=(150, 200)))
    with pytest.raises(TargetFormatError, match='all boxes fit the original '
                       '150x200 image: they were not resized'):
        check_detection_targets([sample], 3, 'xyxy_pixel')


def test_a_batch_of_only_zero_area_boxes_is_refused():
    points = _sample([[10, 10, 10, 10], [20, 5, 20, 5]], [0, 1])
    with pytest.raises(TargetFormatError, match='all 2 gt boxes of the '
                       'batch have zero width or height'):
        check_detection_targets([points], 3, 'xyxy_pixel')
    # One degenerate box among valid ones (clipped by an augmentation).
    check_detection_targets([_sample([[10, 10, 10, 10], [1, 1, 9, 9]],
                                     [0, 1])], 3, 'xyxy_pixel')


def test_normalized_xyxy_given_as_cxcywh_is_named():
    # xyxy (0.05, 0.1, 0.3, 0.4): as cxcywh, x1 = 0.05 - 0.15 < 0.
    sample = _sample([[0.05, 0.1, 0.3, 0.4]], [1])
    with pytest.raises(TargetFormatError, match='every box of the image '
                       'reads as a valid normalized x1, y1, x2, y2'):
        check_detection_targets([sample], 3, 'cxcywh_normalized')


def test_boxes_normalized_by_the_unpadded_image_reach_into_the_padding():
    # The image is 64 x 96 inside a 96 x 96 padded batch: normalized by
    # the padded frame, y can reach 64 / 96 = 0.667 at most.
    sample = _sample([[0.5, 0.8, 0.2, 0.2]], [1])  # y2 = 0.9
    sample.set_metainfo(dict(batch_input_shape=(96, 96)))
    with pytest.raises(TargetFormatError, match='reaches into the batch '
                       'padding'):
        check_detection_targets([sample], 3, 'cxcywh_normalized')
    inside = _sample([[0.5, 0.3, 0.2, 0.2]], [1])
    inside.set_metainfo(dict(batch_input_shape=(96, 96)))
    check_detection_targets([inside], 3, 'cxcywh_normalized')


def test_declared_value_ranges_name_key_value_and_position():
    from engine_plugins.engine.sanity.preflight import check_value_ranges
    ranges = dict(label_ids=(0, 10, -100), input_ids=(0, 10))
    labels = torch.tensor([[3, -100, 9], [1, -1, 2]])
    with pytest.raises(TargetFormatError) as err:
        check_value_ranges(dict(label_ids=labels), ranges)
    assert str(err.value).startswith(
        "batch key 'label_ids' holds -1 at index [1, 1], outside [0, 10) or "
        'the ignore index -100 (an ignore label other than -100?)')
    assert err.value.cause == 'label_range'
    with pytest.raises(TargetFormatError, match="'input_ids' holds 10"):
        check_value_ranges(dict(input_ids=torch.tensor([10])), ranges)
    check_value_ranges(
        dict(label_ids=torch.tensor([-100, 0, 9]),
             other=torch.tensor([1e9])), ranges)
