"""RTDETRCriterion: IoU-aware targets, box losses by hand, denoising's
fixed matching, normalisation, AMP, and pixel boxes caught."""
import pytest
import torch

from engine_plugins.engine.sanity.preflight import TargetFormatError
from engine_plugins.models.rtdetr import (DecoderOutputs, DenoisingGroups,
                                          RTDETRCriterion, RTDETRVarifocalLoss,
                                          rtdetr_criterion)

MATCHER = dict(
    type='BatchedHungarianMatcher',
    match_costs=[
        dict(type='FocalLossCost', weight=2.0, alpha=0.25, gamma=2.0),
        dict(type='BBoxL1Cost', weight=5.0, box_format='xywh'),
        dict(type='IoUCost', iou_mode='giou', weight=2.0),
    ])
GT_LABELS = [torch.tensor([2])]
GT_BOXES = [torch.tensor([[0.5, 0.5, 0.4, 0.4]])]


def _criterion():
    return RTDETRCriterion(num_classes=3, matcher=MATCHER)


def _outputs(logits, boxes, **dn):
    # One decoder layer; the encoder output repeats it.
    return DecoderOutputs(logits[None], boxes[None], logits, boxes, **dn)


def _case():
    # 3 queries; query 1 sits on the gt's centre with half its width and
    # the highest class-2 score, so it is the match.
    logits = torch.tensor([[[0.0, 0.0, -2.0], [-3.0, -3.0, 2.0],
                            [1.0, -1.0, -1.0]]])
    boxes = torch.tensor([[[0.1, 0.1, 0.1, 0.1], [0.5, 0.5, 0.2, 0.4],
                           [0.9, 0.9, 0.1, 0.1]]])
    return logits, boxes


def test_box_losses_and_iou_target_by_hand():
    logits, boxes = _case()
    losses = _criterion()(_outputs(logits, boxes), GT_LABELS, GT_BOXES)
    assert set(losses) == {
        'loss_vfl', 'loss_bbox', 'loss_giou', 'enc_loss_vfl',
        'enc_loss_bbox', 'enc_loss_giou'
    }
    # |0.2 - 0.4| in w only: L1 0.2, x5.
    assert float(losses['loss_bbox']) == pytest.approx(1.0, rel=1e-5)
    # The 0.2x0.4 box inside the 0.4x0.4 gt: IoU 0.08 / 0.16 = 0.5, and
    # the enclosing box is the gt, so GIoU = 0.5; (1 - 0.5) x2.
    assert float(losses['loss_giou']) == pytest.approx(1.0, rel=1e-5)
    # VFL target: 0.5 at (query 1, class 2), zeros elsewhere (queries 0
    # and 2 are background: all-zero rows).
    target = torch.zeros(1, 3, 3)
    target[0, 1, 2] = 0.5
    expected = RTDETRVarifocalLoss()(logits, target, target > 0,
                                     torch.tensor(1.0))
    assert float(losses['loss_vfl']) == pytest.approx(float(expected))


def test_losses_are_divided_by_the_number_of_gt_boxes():
    logits, boxes = _case()
    one = _criterion()(_outputs(logits, boxes), GT_LABELS, GT_BOXES)
    # The same image twice: twice the loss over twice the boxes.
    two = _criterion()(
        _outputs(logits.repeat(2, 1, 1), boxes.repeat(2, 1, 1)),
        GT_LABELS * 2, GT_BOXES * 2)
    for key in one:
        assert float(two[key]) == pytest.approx(float(one[key]), rel=1e-5)


def test_denoising_uses_the_fixed_matching_and_group_count():
    logits, boxes = _case()
    # 2 groups of (positive, negative) for the one gt: positives at 0, 2.
    # Positive 0 is exact; positive 2 is 0.1 off in cx.
    dn_boxes = torch.tensor([[[0.5, 0.5, 0.4, 0.4], [0.1, 0.1, 0.1, 0.1],
                              [0.6, 0.5, 0.4, 0.4], [0.9, 0.9, 0.1, 0.1]]])
    dn = DenoisingGroups(
        label_queries=torch.zeros(1, 4, 8),
        ref_boxes_unact=torch.zeros(1, 4, 4),
        attn_mask=torch.zeros(7, 7, dtype=torch.bool),
        positive_idx=[torch.tensor([0, 2])],
        num_groups=2)
    losses = _criterion()(
        _outputs(logits, boxes, dn_logits=torch.zeros(1, 1, 4, 3),
                 dn_boxes=dn_boxes[None], dn=dn), GT_LABELS, GT_BOXES)
    # L1: (0 + 0.1) x5 over 1 box x 2 groups.
    assert float(losses['dn_loss_bbox']) == pytest.approx(0.25, rel=1e-5)
    # Shifted by 0.1 of a 0.4 box: IoU = 0.3*0.4 / (2*0.16 - 0.12) = 0.6,
    # enclosing 0.5x0.4 = 0.2, GIoU = 0.6 - (0.2 - 0.2)/0.2 = 0.6.
    assert float(losses['dn_loss_giou']) == pytest.approx(
        2 * (0 + 0.4) / 2, rel=1e-5)


def test_images_without_gts_give_connected_finite_losses():
    logits, boxes = _case()
    logits.requires_grad_(True)
    boxes.requires_grad_(True)
    losses = _criterion()(
        _outputs(logits, boxes), [torch.zeros(0, dtype=torch.long)],
        [torch.zeros(0, 4)])
    for key, value in losses.items():
        assert torch.isfinite(value) and value.requires_grad, key
    assert float(losses['loss_bbox']) == 0.0
    # All background: VFL > 0 (every query is pushed down).
    assert float(losses['loss_vfl']) > 0


def test_pixel_boxes_are_caught_with_the_image_named():
    logits, boxes = _case()
    with pytest.raises(TargetFormatError, match=r'image 0 \(a\.jpg\).*pixel'):
        _criterion()(
            _outputs(logits, boxes), GT_LABELS,
            [torch.tensor([[320.0, 240.0, 100.0, 80.0]])],
            names=['a.jpg'])


def test_autocast_inputs_give_fp32_losses_equal_to_fp32():
    logits, boxes = _case()
    reference = _criterion()(_outputs(logits, boxes), GT_LABELS, GT_BOXES)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        half = _criterion()(
            _outputs(logits.bfloat16(), boxes.bfloat16()), GT_LABELS,
            GT_BOXES)
    for key, value in half.items():
        assert value.dtype == torch.float32, key
        # bf16 inputs keep ~3 significant digits.
        assert float(value) == pytest.approx(
            float(reference[key]), rel=2e-2, abs=1e-3), key


def test_box_count_is_averaged_over_ranks(monkeypatch):
    # Another rank holds 3 boxes to our 1: both divide by mean(1, 3) = 2.
    def fake_all_reduce(tensor, op):
        assert op == 'mean'
        tensor.copy_((tensor + 3.0) / 2)

    logits, boxes = _case()
    single = _criterion()(_outputs(logits, boxes), GT_LABELS, GT_BOXES)
    monkeypatch.setattr(rtdetr_criterion.dist, 'all_reduce', fake_all_reduce)
    ddp = _criterion()(_outputs(logits, boxes), GT_LABELS, GT_BOXES)
    for key in single:
        assert float(ddp[key]) == pytest.approx(
            float(single[key]) / 2, rel=1e-5), key
