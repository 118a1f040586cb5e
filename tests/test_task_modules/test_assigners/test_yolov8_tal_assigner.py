"""YOLOv8TaskAlignedAssigner against hand-worked cases and a loop-based
reference."""
import math

import pytest
import torch

from engine_plugins.task_modules import YOLOv8TaskAlignedAssigner
from engine_plugins.task_modules.assigners.yolov8_tal_assigner import \
    candidate_pairs
from tests.reference_ultralytics import import_ultralytics
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
def test_equals_the_loop_reference(seed):
    problem = _random_problem(seed)
    batched = YOLOv8TaskAlignedAssigner(num_classes=4, topk=5).assign(
        *problem)
    labels, bboxes, scores, fg, gt_idx, conflicts = reference_tal(
        *problem, num_classes=4, topk=5)
    assert batched.fg_mask.any() and conflicts > 0  # the cases are covered
    assert torch.equal(batched.fg_mask, fg)
    assert torch.equal(batched.gt_idx[fg], gt_idx[fg])
    assert torch.equal(batched.labels, labels)
    torch.testing.assert_close(batched.bboxes[fg], bboxes[fg])
    torch.testing.assert_close(batched.scores, scores, atol=1e-6, rtol=1e-4)


def _dense_inside(points, boxes, eps):
    lt = points[None] - boxes[:, None, :2]
    rb = boxes[:, None, 2:] - points[None]
    return torch.cat([lt, rb], -1).amin(-1) > eps


@pytest.mark.parametrize('layout', ['grid', 'scattered', 'one_column'])
@pytest.mark.parametrize('box_dtype', [torch.float32, torch.float64])
def test_candidate_pairs_equal_the_dense_inside_test(layout, box_dtype):
    gen = torch.Generator().manual_seed(3)
    if layout == 'grid':
        # two levels of cell centres, as the YOLO head makes them
        points = torch.cat([
            torch.stack(torch.meshgrid(
                torch.arange(n) + 0.5, torch.arange(n) + 0.5,
                indexing='xy'), -1).reshape(-1, 2) * (64 / n)
            for n in (16, 8)
        ])
    elif layout == 'scattered':
        points = torch.rand(500, 2, generator=gen) * 64
    else:  # every anchor at the same x: one bucket holds them all
        points = torch.stack(
            [torch.full((50, ), 7.0),
             torch.rand(50, generator=gen) * 64], -1)
    xy = torch.rand(40, 2, generator=gen) * 70 - 5
    wh = torch.rand(40, 2, generator=gen) * 30
    boxes = torch.cat([xy, xy + wh], -1)
    # Boxes whose edges sit exactly on anchor coordinates, a zero-size box
    # on an anchor, and one covering everything.
    on_edge = points[:4].repeat(1, 2) + torch.tensor([-4., -4, 4, 4])
    boxes = torch.cat([
        boxes, on_edge, points[4:5].repeat(1, 2),
        torch.tensor([[-1., -1, 100, 100]])
    ]).to(box_dtype)
    for eps in (0.0, 1e-9, 0.5):
        box_idx, anchor_idx = candidate_pairs(points, boxes, eps)
        dense = _dense_inside(points, boxes, eps)
        got = torch.zeros_like(dense)
        got[box_idx, anchor_idx] = True
        assert torch.equal(got, dense), eps
        assert len(box_idx) == int(dense.sum())  # no pair twice
        assert bool((box_idx[1:] >= box_idx[:-1]).all())  # box-major


def test_candidate_pairs_on_empty_inputs():
    points = torch.rand(10, 2)
    none = candidate_pairs(points, torch.zeros(0, 4), 1e-9)
    assert [len(t) for t in none] == [0, 0]
    far = candidate_pairs(points, torch.tensor([[50., 50, 60, 60]]), 1e-9)
    assert [len(t) for t in far] == [0, 0]


def test_negative_eps_is_refused():
    with pytest.raises(ValueError, match='eps must be >= 0'):
        YOLOv8TaskAlignedAssigner(num_classes=2, eps=-1.0)


def test_ties_at_the_topk_place_go_to_the_lower_anchor_index():
    # Five anchors on a row inside one GT, all with the same prediction
    # relative to the GT: equal metrics. topk=3 keeps anchors 0, 1, 2.
    points = torch.tensor([[2., 8], [6, 8], [10, 8], [14, 8], [18, 8]])
    gt = torch.tensor([[[0., 0, 20, 16]]])
    preds = gt.expand(1, 5, 4).clone()
    scores = torch.full((1, 5, 2), 0.5)
    out = YOLOv8TaskAlignedAssigner(num_classes=2, topk=3).assign(
        scores, preds, points, torch.tensor([[1]]), gt,
        torch.tensor([[True]]))
    assert out.fg_mask.tolist() == [[True, True, True, False, False]]


def test_background_scores_take_no_memory():
    scores = torch.rand(2, 6, 3)
    out = YOLOv8TaskAlignedAssigner(num_classes=3).assign(
        scores, torch.rand(2, 6, 4), torch.rand(6, 2), torch.zeros(2, 0),
        torch.zeros(2, 0, 4), torch.zeros(2, 0, dtype=torch.bool))
    assert out.scores.shape == (2, 6, 3) and out.scores.stride() == (0, 0, 0)
    assert float(out.scores.abs().sum()) == 0.0 and not out.fg_mask.any()


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


def _ultralytics_assigner(**kwargs):
    modules = import_ultralytics('ultralytics.utils.tal')
    if modules is None:
        pytest.skip('ultralytics (optional oracle) is not installed')
    return modules[0].TaskAlignedAssigner(**kwargs)


@pytest.mark.parametrize('seed', [0, 1])
def test_outputs_equal_ultralytics(seed):
    """Same targets as ultralytics' TaskAlignedAssigner on P3-P5 anchors of
    a 256 px input, 0-20 GTs per image with padding, 5 classes."""
    ultra = _ultralytics_assigner(
        topk=10, num_classes=5, alpha=0.5, beta=6.0)
    gen = torch.Generator().manual_seed(seed)
    points = torch.cat([
        torch.stack(torch.meshgrid(
            torch.arange(256 // s) + 0.5, torch.arange(256 // s) + 0.5,
            indexing='xy'), -1).reshape(-1, 2) * s for s in (8, 16, 32)
    ])
    batch, num_gts, num_anchors = 3, 20, len(points)
    wh = torch.exp(torch.empty(batch, num_gts, 2).uniform_(2, 5.3,
                                                           generator=gen))
    xy = torch.rand(batch, num_gts, 2, generator=gen) * (256 - wh)
    gts = torch.cat([xy, xy + wh], -1)
    pad = torch.arange(num_gts)[None] < torch.tensor([[20], [7], [0]])
    labels = torch.randint(0, 5, (batch, num_gts), generator=gen)
    half = (torch.rand(batch, num_anchors, 2, generator=gen) * 40 + 4)
    centre = points + (torch.rand(batch, num_anchors, 2, generator=gen) -
                       0.5) * 16
    preds = torch.cat([centre - half, centre + half], -1)
    scores = torch.rand(batch, num_anchors, 5, generator=gen)

    ours = YOLOv8TaskAlignedAssigner(num_classes=5).assign(
        scores, preds, points, labels, gts, pad)
    ref_labels, ref_bboxes, ref_scores, ref_fg, ref_idx = ultra(
        scores, preds, points, labels[..., None], gts, pad[..., None].float())
    fg = ours.fg_mask
    assert 50 < int(fg.sum())  # the case is not trivial
    # ultralytics may also mark zero-metric anchors positive (target 0);
    # every anchor positive here is positive there, and nothing else
    # differs.
    assert not bool((fg & ~ref_fg).any())
    assert float(ref_scores[ref_fg & ~fg].abs().sum()) == 0.0
    torch.testing.assert_close(ours.scores, ref_scores, atol=1e-6, rtol=1e-5)
    assert torch.equal(ours.gt_idx[fg], ref_idx[fg])
    assert torch.equal(ours.labels[fg], ref_labels[fg])
    assert torch.equal(ours.bboxes[fg], ref_bboxes[fg])


def test_non_contiguous_predictions():
    """The head's scores are a permuted (B, C, A) tensor."""
    problem = list(_random_problem(0))
    contiguous = YOLOv8TaskAlignedAssigner(num_classes=4, topk=5).assign(
        *problem)
    problem[0] = problem[0].transpose(1, 2).contiguous().transpose(1, 2)
    problem[1] = problem[1].transpose(1, 2).contiguous().transpose(1, 2)
    assert not problem[0].is_contiguous()
    out = YOLOv8TaskAlignedAssigner(num_classes=4, topk=5).assign(*problem)
    for a, b in zip(out, contiguous):
        assert torch.equal(a, b)
