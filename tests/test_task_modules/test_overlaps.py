import math

import pytest
import torch
from mmdet.structures.bbox import bbox_overlaps

from engine_plugins.task_modules import bbox_ciou, pairwise_giou


def test_ciou_same_aspect_is_iou_minus_centre_term():
    # IoU 1/7; centres (1,1),(2,2): rho^2 = 2; enclosing 3x3: c^2 = 18.
    value = bbox_ciou(torch.tensor([0., 0, 2, 2]), torch.tensor([1., 1, 3, 3]))
    assert float(value) == pytest.approx(1 / 7 - 2 / 18, abs=1e-6)


def test_ciou_aspect_term_without_iou_gate():
    # IoU 0.5 (< 0.5 gate of mmdet's ciou_loss would not apply anyway at
    # exactly 0.5, so check a case mmdet zeroes: IoU 0.5 with v > 0).
    box1, box2 = torch.tensor([0., 0, 4, 2]), torch.tensor([0., 0, 2, 2])
    v = 4 / math.pi**2 * (math.atan(1.0) - math.atan(2.0))**2
    alpha = v / (v - 0.5 + 1)
    expected = 0.5 - 1 / 20 - v * alpha  # rho^2 = 1, c^2 = 16 + 4
    assert float(bbox_ciou(box1, box2)) == pytest.approx(expected, abs=1e-6)
    assert float(bbox_ciou(box2, box1)) == pytest.approx(expected, abs=1e-6)


def test_identical_boxes_give_one_and_far_boxes_go_negative():
    box = torch.tensor([[10., 10, 30, 20]])
    assert float(bbox_ciou(box, box)) == pytest.approx(1.0, abs=1e-6)
    far = torch.tensor([[100., 100, 120, 110]])
    assert float(bbox_ciou(box, far)) < 0


@pytest.mark.parametrize('mode', ['iou', 'giou'])
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_pairwise_giou_is_bitwise_mmdets_bbox_overlaps(mode, dtype):
    gen = torch.Generator().manual_seed(0)

    def boxes(*shape):
        xy = torch.rand(*shape, 2, generator=gen) * 100
        wh = torch.rand(*shape, 2, generator=gen) * 60
        return torch.cat([xy, xy + wh], -1).to(dtype)

    pred, gts = boxes(3, 50), boxes(3, 17)
    gts[0, :3] = pred[0, :3]  # identical boxes
    gts[1, 0, 2:] = gts[1, 0, :2]  # zero area
    pred[2, 0] = torch.tensor([1e4, 1e4, 1e4 + 1, 1e4 + 1])  # far away
    ours = pairwise_giou(pred, gts, mode)
    assert ours.shape == (3, 50, 17) and ours.dtype == dtype
    assert torch.equal(ours, bbox_overlaps(pred, gts, mode=mode))
    assert torch.equal(
        pairwise_giou(pred[0], gts[0], mode),
        bbox_overlaps(pred[0], gts[0], mode=mode))


def test_pairwise_giou_hand_values():
    # IoU: 1 / 7; enclosing 3 x 3 = 9, union 7: GIoU = 1/7 - 2/9.
    box1, box2 = torch.tensor([[0., 0, 2, 2]]), torch.tensor([[1., 1, 3, 3]])
    assert float(pairwise_giou(box1, box2, 'iou')) == pytest.approx(1 / 7)
    assert float(pairwise_giou(box1, box2)) == pytest.approx(1 / 7 - 2 / 9)
    with pytest.raises(ValueError, match="'iou' or 'giou'"):
        pairwise_giou(box1, box2, 'iof')
