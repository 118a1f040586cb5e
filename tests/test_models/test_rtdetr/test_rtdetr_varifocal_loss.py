"""RTDETRVarifocalLoss against the formula, element by element."""
import math

import pytest
import torch

from engine_plugins.models.rtdetr import RTDETRVarifocalLoss


def _bce(x, t):
    # BCE with logits: max(x, 0) - x t + log(1 + exp(-|x|))
    return max(x, 0) - x * t + math.log1p(math.exp(-abs(x)))


def _sig(x):
    return 1 / (1 + math.exp(-x))


def _case():
    # Query 0 matched to class 1 with IoU 0.8; query 1 is background.
    pred = torch.tensor([[0.0, 2.0], [-1.0, 0.5]], requires_grad=True)
    target = torch.tensor([[0.0, 0.8], [0.0, 0.0]])
    positive = torch.tensor([[False, True], [False, False]])
    return pred, target, positive


def test_matched_and_background_entries():
    pred, target, positive = _case()
    loss = RTDETRVarifocalLoss(alpha=0.75, gamma=2.0)(
        pred, target, positive, avg_factor=torch.tensor(2.0))
    # Negatives weigh 0.75 * p^2; the positive weighs its IoU target.
    expected = (0.75 * _sig(0.0)**2 * _bce(0.0, 0) + 0.8 * _bce(2.0, 0.8) +
                0.75 * _sig(-1.0)**2 * _bce(-1.0, 0) +
                0.75 * _sig(0.5)**2 * _bce(0.5, 0)) / 2
    assert float(loss) == pytest.approx(expected, rel=1e-6)


def test_weight_is_detached():
    pred, target, positive = _case()
    RTDETRVarifocalLoss()(pred, target, positive,
                          avg_factor=torch.tensor(1.0)).backward()
    # d/dx of w * BCE(x, 0) with w constant is w * sigmoid(x).
    p = _sig(0.5)
    assert float(pred.grad[1, 1]) == pytest.approx(0.75 * p**2 * p, rel=1e-5)
    # Positive entry: w (p - t) with w = t = 0.8.
    assert float(pred.grad[0, 1]) == pytest.approx(
        0.8 * (_sig(2.0) - 0.8), rel=1e-5)


def test_matched_query_with_zero_iou_is_not_a_negative():
    # IoU 0 on the gt class: weight 0 (RT-DETR), not 0.75 p^2 (mmdet).
    pred = torch.tensor([[3.0]])
    loss = RTDETRVarifocalLoss()(
        pred, torch.zeros(1, 1), torch.ones(1, 1, dtype=torch.bool),
        avg_factor=torch.tensor(1.0))
    assert float(loss) == 0.0


def test_shape_mismatch_is_named():
    with pytest.raises(ValueError, match='same shape'):
        RTDETRVarifocalLoss()(
            torch.zeros(2, 3), torch.zeros(2, 2),
            torch.zeros(2, 3, dtype=torch.bool), torch.tensor(1.0))
