"""YOLOv8TaskAlignedAssigner against hand-worked cases and a loop-based
reference."""
import math

import pytest
import torch

from engine_plugins.task_modules import YOLOv8TaskAlignedAssigner
from tests.test_task_modules.dense_reference_tal import dense_reference_tal
from tests.test_task_modules.reference_tal import reference_tal


def _assign(assigner, scores, preds, points, labels, boxes, pad):
    return assigner.assign(scores, preds, points, labels, boxes, pad)


def test_worked_example_from_the_docstring():
    points = torch.tensor([[4., 4], [12, 12], [20, 4]])
    gt = torch.tensor([[[0., 0, 16, 16]]])
    preds = torch.tensor([[[0., 0, 16, 8], [0, 0, 16, 16], [16, 0, 24, 8]]])
    scores = torch.zeros(1, 3, 3)
    scores[0, :, 2] = torch.tensor([0.25, 0.64, 0.9])
    out = YOLOv8TaskAlignedAssigner(num_classes=3).assign(
        scores, preds, points, torch.tensor([[2]]), gt,
        torch.tensor([[True]]))
    # Anchor 0: IoU 0.5, rho^2 = 16, c^2 = 512, aspect 2:1 vs 1:1.
    v = 4 / math.pi**2 * (math.atan(2.0) - math.atan(1.0))**2
    ciou0 = 0.5 - 16 / 512 - v * v / (v + 0.5)
    align0, align1 = 0.25**0.5 * ciou0**6, 0.64**0.5 * 1.0
    assert out.fg_mask.tolist() == [[True, True, False]]
    assert out.labels[0, :2].tolist() == [2, 2]
    expected = torch.tensor([align0 / align1 * 1.0, 1.0, 0.0])
    torch.testing.assert_close(out.scores[0, :, 2], expected, atol=1e-5,
                               rtol=1e-4)
    assert out.scores[0, :, :2].abs().sum() == 0
    torch.testing.assert_close(out.bboxes[0, 0], gt[0, 0])


def test_conflict_goes_to_the_highest_overlap_gt():
    # One anchor at (10, 10) inside both GTs; its prediction overlaps the
    # second GT better.
    points = torch.tensor([[10., 10]])
    gts = torch.tensor([[[0., 0, 20, 20], [5, 5, 15, 15]]])
    preds = torch.tensor([[[5., 5, 15, 15]]])
    scores = torch.full((1, 1, 2), 0.5)
    out = YOLOv8TaskAlignedAssigner(num_classes=2).assign(
        scores, preds, points, torch.tensor([[0, 1]]), gts,
        torch.tensor([[True, True]]))
    assert out.fg_mask.tolist() == [[True]]
    assert out.gt_idx.tolist() == [[1]] and out.labels.tolist() == [[1]]


def test_padding_rows_and_empty_gts():
    torch.manual_seed(0)
    points = torch.rand(20, 2) * 32
    preds = torch.cat([points - 4, points + 4], -1)[None]
    scores = torch.rand(1, 20, 3)
    gt = torch.tensor([[[2., 2, 20, 20]]])
    assigner = YOLOv8TaskAlignedAssigner(num_classes=3, topk=4)
    real = assigner.assign(scores, preds, points, torch.tensor([[1]]), gt,
                           torch.tensor([[True]]))
    padded = assigner.assign(
        scores, preds, points, torch.tensor([[1, 0, 0]]),
        torch.cat([gt, torch.zeros(1, 2, 4)], 1),
        torch.tensor([[True, False, False]]))
    for a, b in zip(real, padded):
        torch.testing.assert_close(a, b)
    assert int(real.fg_mask.sum()) == 4
    empty = assigner.assign(scores, preds, points,
                            torch.zeros(1, 0, dtype=torch.long),
                            torch.zeros(1, 0, 4),
                            torch.zeros(1, 0, dtype=torch.bool))
    assert not empty.fg_mask.any() and empty.scores.sum() == 0
    all_pad = assigner.assign(scores, preds, points, torch.tensor([[0]]),
                              torch.zeros(1, 1, 4), torch.tensor([[False]]))
    assert not all_pad.fg_mask.any()


def _random_problem(seed, batch=3, num_gts=6):
    gen = torch.Generator().manual_seed(seed)
    # three levels (strides 8, 16, 32) on a 64 px image: 64 + 16 + 4 anchors
    points = []
    for stride in (8, 16, 32):
        n = 64 // stride
        ys, xs = torch.meshgrid(torch.arange(n), torch.arange(n),
                                indexing='ij')
        points.append(
            (torch.stack([xs, ys], -1).reshape(-1, 2) + 0.5) * stride)
    points = torch.cat(points).float()
    xy = torch.rand(batch, num_gts, 2, generator=gen) * 48
    wh = torch.rand(batch, num_gts, 2, generator=gen) * 30 + 6
    gts = torch.cat([xy, xy + wh], -1)
    pad = torch.rand(batch, num_gts, generator=gen) > 0.3
    labels = torch.randint(0, 4, (batch, num_gts), generator=gen)
    jitter = torch.rand(batch, len(points), 4, generator=gen) * 6
    size = torch.rand(batch, len(points), 2, generator=gen) * 20 + 4
    preds = torch.cat([points - size + jitter[..., :2],
                       points + size + jitter[..., 2:]], -1)
    scores = torch.rand(batch, len(points), 4, generator=gen)
    return scores, preds, points, labels, gts, pad


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_batched_equals_reference_and_per_image_path(seed):
    problem = _random_problem(seed)
    batched = YOLOv8TaskAlignedAssigner(num_classes=4, topk=5).assign(
        *problem)
    per_image = YOLOv8TaskAlignedAssigner(
        num_classes=4, topk=5, max_elements=0).assign(*problem)
    labels, bboxes, scores, fg, gt_idx, conflicts = reference_tal(
        *problem, num_classes=4, topk=5)
    assert batched.fg_mask.any() and conflicts > 0  # the cases are covered
    assert torch.equal(batched.fg_mask, fg)
    assert torch.equal(batched.gt_idx[fg], gt_idx[fg])
    assert torch.equal(batched.labels, labels)
    torch.testing.assert_close(batched.bboxes[fg], bboxes[fg])
    torch.testing.assert_close(batched.scores, scores, atol=1e-6, rtol=1e-4)
    for a, b in zip(batched, per_image):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_dense_benchmark_baseline_equals_the_loop_reference(seed):
    """benchmarks/bench_tal.py times the assigner against the dense
    baseline; the baseline must compute the same algorithm."""
    problem = _random_problem(seed)
    labels, bboxes, scores, fg, gt_idx, _ = reference_tal(
        *problem, num_classes=4, topk=5)
    d_labels, d_bboxes, d_scores, d_fg, d_gt_idx = dense_reference_tal(
        *problem, num_classes=4, topk=5)
    assert torch.equal(d_fg, fg) and fg.any()
    assert torch.equal(d_gt_idx[fg], gt_idx[fg])
    assert torch.equal(d_labels, labels)
    torch.testing.assert_close(d_bboxes, bboxes)
    torch.testing.assert_close(d_scores, scores, atol=1e-6, rtol=1e-4)
