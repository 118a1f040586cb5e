"""The detection target contracts: labels in ``[0, num_classes)`` and
boxes in the frame and convention a model declares (``box_format``),
registered with the sanity engine's target-contract mechanism."""
from typing import Any, Sequence

import torch

from engine_plugins.engine.sanity.errors import TargetFormatError
from engine_plugins.engine.sanity.samples import describe_sample
from engine_plugins.engine.sanity.target_contracts import (
    DatasetContract, TargetCount, register_dataset_contract,
    register_target_contract)
from .box_frames import (BOX_FORMATS, check_normalized_cxcywh,
                         check_pixel_boxes, gt_labels_and_boxes, image_extent)


def check_labels(labels: torch.Tensor, num_classes: int, where: str) -> None:
    """Raise :class:`TargetFormatError` (cause ``label_range``) for a label
    outside ``[0, num_classes)``."""
    bad = ((labels < 0) | (labels >= num_classes)).nonzero().flatten()
    if not bad.numel():
        return
    j = int(bad[0])
    value = int(labels[j])
    if value == num_classes:
        note = (' (== num_classes: background must be left to the loss, not '
                'encoded as a class index; or the ids are 1-based)')
    elif value < 0:
        note = (' (negative: an "ignore" label; drop such boxes in the '
                'dataset, the losses have no ignore class)')
    else:
        note = ''
    raise TargetFormatError(
        f'{where}, instance {j}: label {value} is outside '
        f'[0, {num_classes}){note}', 'label_range')


def check_detection_targets(data_samples: Sequence[Any], num_classes: int,
                            box_format: str) -> None:
    """Labels in ``[0, num_classes)`` and boxes in ``box_format``.

    Raises:
        TargetFormatError: names the image file (``img_path``) and the
            instance index.
    """
    if box_format not in BOX_FORMATS:
        raise ValueError(
            f'box_format must be one of {BOX_FORMATS}, got {box_format!r}')
    degenerate = total = 0
    for i, sample in enumerate(data_samples):
        gt = gt_labels_and_boxes(sample)
        if gt is None:
            continue
        labels, boxes = gt
        where = describe_sample(sample, i)
        check_labels(labels, num_classes, where)
        if box_format == 'cxcywh_normalized':
            check_normalized_cxcywh(boxes, where,
                                    image_extent(sample.metainfo))
            continue
        check_pixel_boxes(boxes, sample.metainfo, where)
        total += len(boxes)
        degenerate += int(((boxes[:, 2] <= boxes[:, 0]) |
                           (boxes[:, 3] <= boxes[:, 1])).sum())
    # Augmentation may clip a few boxes to zero size; all of them cannot.
    if total and degenerate == total:
        raise TargetFormatError(
            f'all {total} gt boxes of the batch have zero width or height: '
            'the box coordinates are not x1, y1, x2, y2 (a point or a '
            'repeated corner?)')


@register_target_contract('xyxy_pixel')
def check_pixel_xyxy_targets(data_samples: Sequence[Any],
                             num_classes: int) -> None:
    """Datasets' contract, and the YOLO losses': pixel xyxy in the
    network-input frame."""
    check_detection_targets(data_samples, num_classes, 'xyxy_pixel')


@register_target_contract('cxcywh_normalized')
def check_normalized_cxcywh_targets(data_samples: Sequence[Any],
                                    num_classes: int) -> None:
    """RT-DETR's contract after its preprocessor: normalized cxcywh of the
    padded input."""
    check_detection_targets(data_samples, num_classes, 'cxcywh_normalized')


def count_boxes(data_samples: Sequence[Any]):
    """The batch's gt and ignored boxes, or None for samples without
    ``gt_instances`` labels on the host."""
    gt = getattr(data_samples[0], 'gt_instances', None)
    labels = getattr(gt, 'labels', None) if gt is not None else None
    if not isinstance(labels, torch.Tensor) or labels.is_cuda:
        return None
    return TargetCount(
        sum(len(getattr(s, 'gt_instances', ())) for s in data_samples),
        sum(len(getattr(s, 'ignored_instances', ())) for s in data_samples))


register_dataset_contract(
    DatasetContract(
        'xyxy_pixel',
        count=count_boxes,
        none_in_first=(
            'no gt box in any of the first {batches} batches: the '
            'annotations did not load, or a pipeline step '
            '(FilterAnnotations, a crop) removed them all; the detector '
            'would learn that nothing is ever there'),
        all_ignored=(
            'no image of the batch has a gt box, and {ignored} boxes are in '
            'ignored_instances: every box was marked ignored '
            '(gt_ignore_flags set by a transform or iscrowd in the '
            'annotations; an inverted ignore condition ignores every '
            'object)'),
        none_in_batch=(
            'none of the {images} images of the batch has a gt box after '
            'the pipeline, while {fraction:.0%} of the training images have '
            'one as annotated: a pipeline step removed them (a filter or '
            'ignore condition, a crop, boxes dropped by a transform)')))
