"""YOLOv8DetLoss on a hand-computed case, without GTs, and in training."""
import math

import pytest
import torch

from engine_plugins.models import YOLOv8DetLoss

# Two anchors at stride 8: grid (2.5, 2.5) = pixel (20, 20), and grid
# (10.5, 2.5) = pixel (84, 20). Zero logits: every class score is 0.5 and
# every DFL distribution is uniform, so each side decodes to 7.5 bins and
# anchor 0 predicts grid box (-5, -5, 10, 10) = pixel (-40, -40, 80, 80).
POINTS = torch.tensor([[2.5, 2.5], [10.5, 2.5]])
STRIDES = torch.full((2, 1), 8.0)
GT = torch.tensor([[[-40., -40., 80., 80.]]])


def _loss(cls_logits, pred_dist, gt=GT, pad=True):
    return YOLOv8DetLoss(num_classes=2)(cls_logits, pred_dist, POINTS,
                                        STRIDES, torch.tensor([[0]]), gt,
                                        torch.tensor([[pad]]))


def test_hand_computed_case():
    # Anchor 0 is the only candidate (anchor 1 at x=84 is outside); its
    # prediction equals the GT, CIoU = 1, so its soft target is 1 and the
    # target-score sum is 1.
    out = _loss(torch.zeros(1, 2, 2), torch.zeros(1, 2, 64))
    # BCE(0, t) = ln 2 for t in {0, 1}: 2 anchors x 2 classes, gain 0.5.
    assert float(out['loss_cls']) == pytest.approx(4 * math.log(2) * 0.5)
    assert float(out['loss_bbox']) == pytest.approx(0.0, abs=1e-5)
    # DFL target 7.5 on every side; uniform logits: CE = ln 16 on both
    # neighbouring bins, weights sum to 1; gain 1.5.
    assert float(out['loss_dfl']) == pytest.approx(math.log(16) * 1.5)


def test_no_gt_keeps_every_term_connected():
    cls_logits = torch.zeros(1, 2, 2, requires_grad=True)
    pred_dist = torch.zeros(1, 2, 64, requires_grad=True)
    out = _loss(cls_logits, pred_dist, gt=torch.zeros(1, 1, 4), pad=False)
    assert float(out['loss_cls']) == pytest.approx(4 * math.log(2) * 0.5)
    for name in ('loss_bbox', 'loss_dfl'):
        assert float(out[name]) == 0.0 and out[name].grad_fn is not None
    sum(out.values()).backward()
    assert pred_dist.grad is not None and cls_logits.grad is not None


def test_losses_fall_when_optimised():
    torch.manual_seed(0)
    cls_logits = torch.zeros(1, 2, 2, requires_grad=True)
    pred_dist = (torch.randn(1, 2, 64) * 0.1).requires_grad_()
    # Integer distances (4, 6, 6, 3) bins from anchor 0, so DFL's optimum
    # is 0 (a fractional target's optimum is its two-bin entropy).
    gt = torch.tensor([[[-12., -28., 68., 44.]]])
    optimizer = torch.optim.Adam([cls_logits, pred_dist], lr=0.05)
    first = None
    for _ in range(60):
        out = _loss(cls_logits, pred_dist, gt=gt)
        if first is None:
            first = {k: float(v) for k, v in out.items()}
        optimizer.zero_grad()
        sum(out.values()).backward()
        optimizer.step()
    last = {k: float(v) for k, v in out.items()}
    for name in first:
        assert last[name] < 0.5 * first[name], (name, first, last)


def test_runs_in_an_fp32_region_under_autocast():
    cls_logits = torch.zeros(1, 2, 2, dtype=torch.bfloat16)
    pred_dist = torch.zeros(1, 2, 64, dtype=torch.bfloat16)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = _loss(cls_logits, pred_dist)
    assert all(v.dtype == torch.float32 for v in out.values())
    assert float(out['loss_dfl']) == pytest.approx(math.log(16) * 1.5)
