import math

import pytest
import torch

from engine_plugins.task_modules import bbox_ciou


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
