"""BatchedHungarianMatcher against hand-worked costs, brute force and
mmdet's per-image HungarianAssigner."""
import itertools
import math

import pytest
import torch
from mmdet.models.task_modules.assigners import HungarianAssigner
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy
from mmengine.structures import InstanceData

from engine_plugins.engine.sanity.preflight import TargetFormatError
from engine_plugins.registry import TASK_UTILS
from engine_plugins.task_modules import (BatchedHungarianMatcher,
                                         NonFiniteMatchCostError)
from engine_plugins.task_modules.assigners import \
    batched_hungarian_matcher as matcher_module

RTDETR_COSTS = [
    dict(type='FocalLossCost', weight=2.0, alpha=0.25, gamma=2.0),
    dict(type='BBoxL1Cost', weight=5.0, box_format='xywh'),
    dict(type='IoUCost', iou_mode='giou', weight=2.0)
]
# The other batched kinds: softmax classification, xyxy L1, plain IoU.
OTHER_COSTS = [
    dict(type='ClassificationCost', weight=1.0),
    dict(type='BBoxL1Cost', weight=5.0, box_format='xyxy'),
    dict(type='IoUCost', iou_mode='iou', weight=2.0)
]


class FlattenedMatcher(BatchedHungarianMatcher):
    """Every term through the generic path: all queries x all GTs."""

    @staticmethod
    def _batched_kind(cost):
        return None


def _reference_costs(cost_cfgs, logits, boxes, labels, gts):
    """mmdet's costs for one image, called the way HungarianAssigner
    calls them: ``(Q, n)``."""
    pred = InstanceData(scores=logits, bboxes=bbox_cxcywh_to_xyxy(boxes))
    gt = InstanceData(labels=labels, bboxes=bbox_cxcywh_to_xyxy(gts))
    meta = dict(img_shape=(1, 1))
    return sum(TASK_UTILS.build(c)(pred, gt, meta) for c in cost_cfgs)


def _random_problem(gen, num_gts, num_queries, num_classes=5):
    def boxes(n):
        wh = torch.rand(n, 2, generator=gen) * 0.5 + 0.05
        return torch.cat(
            [wh / 2 + torch.rand(n, 2, generator=gen) * (1 - wh), wh], -1)

    logits = torch.randn(
        len(num_gts), num_queries, num_classes, generator=gen) * 2
    pred = torch.stack([boxes(num_queries) for _ in num_gts])
    labels = [torch.randint(0, num_classes, (n, ), generator=gen)
              for n in num_gts]
    return logits, pred, labels, [boxes(n) for n in num_gts]


def test_hand_checked_costs_and_assignment():
    # Two classes. GT 0: class 0, top-left quarter (0, 0, .5, .5) xyxy;
    # GT 1: class 1, bottom-right quarter. Query 0 sits exactly on GT 0,
    # query 1 on the centre quarter (.25, .25, .75, .75), query 2 exactly on
    # GT 1 but with logits favouring class 0.
    ln3 = math.log(3)
    logits = torch.tensor([[[0., 0.], [ln3, ln3], [ln3, -ln3]]])
    boxes = torch.tensor([[[.25, .25, .5, .5], [.5, .5, .5, .5],
                           [.75, .75, .5, .5]]])
    gt_labels = [torch.tensor([0, 1])]
    gt_boxes = [torch.tensor([[.25, .25, .5, .5], [.75, .75, .5, .5]])]
    # Focal cost (x2) = 2 * [a (1-p)^2 (-ln p) - (1-a) p^2 (-ln(1-p))]:
    #   p = 1/2: 2 * (ln2/16 - 3 ln2/16) = -ln2/4
    #   p = 3/4: 2 * (ln(4/3)/64 - 27 ln4/64) = (ln(4/3) - 27 ln4) / 32
    #   p = 1/4: 2 * (9 ln4/64 - 3 ln(4/3)/64) = (9 ln4 - 3 ln(4/3)) / 32
    f_half = -math.log(2) / 4
    f_34 = (math.log(4 / 3) - 27 * math.log(4)) / 32
    f_14 = (9 * math.log(4) - 3 * math.log(4 / 3)) / 32
    # L1 on cxcywh (x5): same box 0; quarter vs opposite quarter
    # |.5| + |.5| = 1 -> 5; centre vs a quarter .25 + .25 -> 2.5.
    # GIoU cost is -2 * GIoU (mmdet leaves out the constant 1):
    #   same box: -2; opposite quarters touch at a point: IoU 0,
    #   hull 1, union .5 -> GIoU -.5 -> +1; centre vs a quarter:
    #   inter 1/16, union 7/16, hull 9/16 -> GIoU 1/7 - 2/9 = -5/63.
    g_centre = 10 / 63
    expected = torch.tensor([
        [f_half + 0 - 2, f_half + 5 + 1],
        [f_34 + 2.5 + g_centre, f_34 + 2.5 + g_centre],
        [f_34 + 5 + 1, f_14 + 0 - 2],
    ])  # ~[[-2.17, 5.83], [1.50, 1.50], [4.84, -1.64]]
    matcher = BatchedHungarianMatcher(RTDETR_COSTS)
    (cost, ) = matcher.cost_blocks(logits, boxes, gt_labels, gt_boxes)
    torch.testing.assert_close(cost, expected, atol=1e-5, rtol=0)
    # Query 0 -> GT 0 and query 2 -> GT 1 (-3.81); the centre query 1
    # is background despite its confident class-1 score.
    ((query, gt), ) = matcher(logits, boxes, gt_labels, gt_boxes)
    assert query.tolist() == [0, 2] and gt.tolist() == [0, 1]


def test_global_optimum_not_greedy():
    # Only L1 on cx (w = h = .1, cy = .5): queries at cx .25 and .1, GTs
    # at .2 and .4. Costs [[.05, .15], [.1, .3]]. Greedy takes the
    # cheapest pair (q0, g0) = .05 and is left with (q1, g1) = .3: .35.
    # The optimum crosses over: (q0, g1) + (q1, g0) = .25.
    def at(*cx):
        return torch.tensor([[x, .5, .1, .1] for x in cx])

    matcher = BatchedHungarianMatcher(
        [dict(type='BBoxL1Cost', weight=1.0, box_format='xywh')])
    args = (torch.zeros(1, 2, 3), at(.25, .1)[None], [torch.tensor([0, 2])],
            [at(.2, .4)])
    torch.testing.assert_close(
        matcher.cost_blocks(*args)[0], torch.tensor([[.05, .15], [.1, .3]]))
    ((query, gt), ) = matcher(*args)
    assert query.tolist() == [0, 1] and gt.tolist() == [1, 0]


def test_docstring_worked_example():
    class Fixed:  # a built cost object that returns the example's matrix
        def __call__(self, pred_instances, gt_instances, img_meta=None):
            return torch.tensor([[1., 2.], [1.5, 10.], [5., 5.]])

    ((query, gt), ) = BatchedHungarianMatcher([Fixed()])(
        torch.zeros(1, 3, 2), torch.rand(1, 3, 4), [torch.tensor([0, 1])],
        [torch.rand(2, 4)])
    assert query.tolist() == [0, 1] and gt.tolist() == [1, 0]


@pytest.mark.parametrize('seed', range(6))
def test_equals_brute_force_minimum(seed):
    gen = torch.Generator().manual_seed(seed)
    num_queries = seed + 1  # 1..6
    # an image without GTs, one with min(Q, 4) GTs, two random
    num_gts = [0, min(num_queries, 4)] + torch.randint(
        0, min(num_queries, 4) + 1, (2, ), generator=gen).tolist()
    problem = _random_problem(gen, num_gts, num_queries)
    matches = BatchedHungarianMatcher(RTDETR_COSTS)(*problem)
    assert len(matches) == len(num_gts)
    for b, ((query, gt), n) in enumerate(zip(matches, num_gts)):
        assert query.dtype == gt.dtype == torch.int64
        assert len(query) == len(gt) == n
        assert query.tolist() == sorted(set(query.tolist()))
        assert sorted(gt.tolist()) == list(range(n))
        if n == 0:
            continue
        cost = _reference_costs(RTDETR_COSTS, *(p[b] for p in problem))
        totals = sorted(
            sum(float(cost[q, j]) for j, q in enumerate(perm))
            for perm in itertools.permutations(range(num_queries), n))
        ours = float(cost[query, gt].sum())
        assert ours == pytest.approx(totals[0], abs=1e-5)
        if len(totals) > 1:  # the random optimum is unique
            assert totals[1] - totals[0] > 1e-4


@pytest.mark.parametrize('cost_cfgs', [RTDETR_COSTS, OTHER_COSTS])
@pytest.mark.parametrize('cls', [BatchedHungarianMatcher, FlattenedMatcher])
def test_equals_mmdet_hungarian_assigner_per_image(cost_cfgs, cls):
    gen = torch.Generator().manual_seed(7)
    num_gts = [0, 1, 5, 30, 12, 33]  # the last has more GTs than queries
    problem = _random_problem(gen, num_gts, num_queries=30, num_classes=7)
    matches = cls(cost_cfgs)(*problem)
    assigner = HungarianAssigner(cost_cfgs)
    for b, (query, gt) in enumerate(matches):
        logits, boxes, labels, gts = (p[b] for p in problem)
        result = assigner.assign(
            InstanceData(scores=logits, bboxes=bbox_cxcywh_to_xyxy(boxes)),
            InstanceData(labels=labels, bboxes=bbox_cxcywh_to_xyxy(gts)),
            img_meta=dict(img_shape=(1, 1)))
        ref_query = (result.gt_inds > 0).nonzero().flatten()
        assert query.tolist() == ref_query.tolist()
        assert gt.tolist() == (result.gt_inds[ref_query] - 1).tolist()
        assert len(query) == min(30, num_gts[b])


def _nan_problem():
    gen = torch.Generator().manual_seed(3)
    return _random_problem(gen, [2, 3, 1], num_queries=4)


def test_nan_ground_truth_names_the_term_the_image_and_the_input():
    logits, boxes, labels, gts = _nan_problem()
    gts[0][1, 0] = float('nan')
    with pytest.raises(NonFiniteMatchCostError) as info:
        BatchedHungarianMatcher(RTDETR_COSTS)(logits, boxes, labels, gts)
    msg = str(info.value)
    assert msg == ('Hungarian matching got non-finite costs from BBoxL1Cost '
                   '(images [0]), IoUCost (images [0]). Non-finite inputs: '
                   'image 0: gt_boxes (ground truth)')
    assert info.value.cause == 'nonfinite_data'


@pytest.mark.parametrize('where', ['logits', 'boxes', 'inf_logit'])
def test_non_finite_predictions_are_matched_and_left_to_the_loss(where):
    logits, boxes, labels, gts = _nan_problem()
    clean = BatchedHungarianMatcher(RTDETR_COSTS)(logits, boxes, labels, gts)
    if where == 'logits':
        logits[1, 2, 0] = float('nan')
    elif where == 'boxes':
        boxes[2, 0, 3] = float('nan')
    else:  # +inf saturates the sigmoid: every cost stays finite
        logits[0, 1, 2] = float('inf')
    matches = BatchedHungarianMatcher(RTDETR_COSTS)(logits, boxes, labels,
                                                    gts)
    # Every gt still gets one query; the broken query is matched last.
    for (query, gt), (_, clean_gt), n in zip(matches, clean, (2, 3, 1)):
        assert sorted(gt.tolist()) == sorted(clean_gt.tolist()) == list(
            range(n))
        assert len(set(query.tolist())) == n
    if where == 'boxes':  # query 0 of image 2 costs 1e8 now: not matched
        assert 0 not in matches[2][0].tolist()


def test_overflowing_cost_from_finite_inputs_raises():
    # A finite 1e30 x 1e30 box overflows its area: GIoU is NaN, L1 is not.
    logits, boxes, labels, gts = _nan_problem()
    boxes[1, 3, 2:] = 1e30
    with pytest.raises(NonFiniteMatchCostError) as info:
        BatchedHungarianMatcher(RTDETR_COSTS)(logits, boxes, labels, gts)
    assert 'from IoUCost (images [1]). All inputs are finite' in str(
        info.value)


def test_non_finite_prediction_of_an_image_without_gts():
    logits, boxes, labels, gts = _nan_problem()
    labels[1], gts[1] = labels[1][:0], gts[1][:0]
    boxes[1, 0, 0] = float('nan')
    matches = BatchedHungarianMatcher(RTDETR_COSTS)(logits, boxes, labels,
                                                    gts)
    assert len(matches[1][0]) == 0


def test_label_out_of_range():
    logits, boxes, labels, gts = _nan_problem()  # 5 classes
    labels[1][2] = 5
    with pytest.raises(TargetFormatError,
                       match=r'image 1 hold \[5\], outside \[0, 5\)'):
        BatchedHungarianMatcher(RTDETR_COSTS)(logits, boxes, labels, gts)


@pytest.mark.parametrize('change, match', [
    (lambda p: (p[0][0], ) + p[1:], r'cls_logits must be \(B, Q, C\)'),
    (lambda p: (p[0], p[1][..., :3]) + p[2:], r'pred_boxes must be'),
    (lambda p: (p[0], p[1][:, :2]) + p[2:], r'disagree on \(B, Q\)'),
    (lambda p: p[:2] + (p[2][:2], p[3][:2]), r'hold 3 images but gt_labels'),
    (lambda p: p[:3] + ([p[3][0], p[3][1][:, :2], p[3][2]], ),
     r'gt_boxes\[1\] must be \(n, 4\)'),
    (lambda p: p[:2] + ([p[2][0], p[2][1][:1], p[2][2]], p[3]),
     r'gt_labels\[1\] has shape \(1,\) but gt_boxes\[1\] holds 3'),
    (lambda p: p[:2] + ([t.float() for t in p[2]], p[3]),
     r'gt_labels\[0\] must hold integer class ids'),
])
def test_shape_errors(change, match):
    problem = change(tuple(_nan_problem()))
    with pytest.raises(ValueError, match=match):
        BatchedHungarianMatcher(RTDETR_COSTS)(*problem)


def test_constant_host_syncs(monkeypatch):
    calls = []
    for name in ('cpu', 'item', 'tolist', '__bool__', '__int__', '__float__'):
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _original=original, **kwargs):
            calls.append(1)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    matcher = BatchedHungarianMatcher(RTDETR_COSTS)
    counts = []
    for num_gts in ([1, 2], [3, 0, 2, 4, 1, 2, 2, 3]):
        gen = torch.Generator().manual_seed(0)
        calls.clear()
        matcher.cost_blocks(*_random_problem(gen, num_gts, num_queries=5))
        counts.append(len(calls))
    # the flags, and on a GPU the summed cost; whatever the batch size
    assert counts[0] == counts[1] <= 2


def test_bf16_autocast_matches_fp32():
    gen = torch.Generator().manual_seed(5)
    logits, boxes, labels, gts = _random_problem(
        gen, [10, 4, 0], num_queries=50, num_classes=6)
    logits, boxes = logits.bfloat16(), boxes.bfloat16()
    gts = [g.bfloat16() for g in gts]
    matcher = BatchedHungarianMatcher(RTDETR_COSTS)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        costs = matcher.cost_blocks(logits, boxes, labels, gts)
        matches = matcher(logits, boxes, labels, gts)
    fp32 = (logits.float(), boxes.float(), labels, [g.float() for g in gts])
    for cost, ref in zip(costs, matcher.cost_blocks(*fp32)):
        assert cost.dtype == torch.float32 and torch.equal(cost, ref)
    for (q, g), (q_ref, g_ref) in zip(matches, matcher(*fp32)):
        assert torch.equal(q, q_ref) and torch.equal(g, g_ref)
    # The region matters: mmdet's costs run in bf16 on bf16 inputs, and
    # BBoxL1Cost's cdist has no bf16 CPU kernel at all.
    with pytest.raises(NotImplementedError, match='BFloat16'):
        _reference_costs(RTDETR_COSTS[1:2], logits[0], boxes[0], labels[0],
                         gts[0])
    focal_giou = [RTDETR_COSTS[0], RTDETR_COSTS[2]]
    bf16 = _reference_costs(focal_giou, logits[0], boxes[0], labels[0],
                            gts[0])
    (fp32_cost, _, _) = BatchedHungarianMatcher(focal_giou).cost_blocks(*fp32)
    assert bf16.dtype == torch.bfloat16
    assert not torch.allclose(bf16.float(), fp32_cost, atol=1e-3)


class _DotCost:
    """A cost outside mmdet's batched kinds, built on a matmul: autocast
    would run it in bf16."""

    def __call__(self, pred_instances, gt_instances, img_meta=None):
        return -pred_instances.bboxes @ gt_instances.bboxes.T


def test_autocast_is_off_inside():
    gen = torch.Generator().manual_seed(6)
    problem = _random_problem(gen, [3, 2], num_queries=8)
    matcher = BatchedHungarianMatcher([_DotCost()])
    with torch.autocast('cpu', dtype=torch.bfloat16):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
        costs = matcher.cost_blocks(*problem)
    for cost, ref in zip(costs, matcher.cost_blocks(*problem)):
        assert cost.dtype == torch.float32 and torch.equal(cost, ref)


def test_config_build_and_empty_batch():
    matcher = TASK_UTILS.build(
        dict(type='BatchedHungarianMatcher', match_costs=RTDETR_COSTS))
    matches = matcher(
        torch.randn(2, 3, 4), torch.rand(2, 3, 4),
        [torch.zeros(0, dtype=torch.long)] * 2, [torch.zeros(0, 4)] * 2)
    assert [(q.shape, g.shape) for q, g in matches] == [
        (torch.Size([0]), torch.Size([0]))
    ] * 2
    with pytest.raises(ValueError, match='match_costs is empty'):
        BatchedHungarianMatcher([])
    with pytest.raises(ValueError, match=r'binary_input=True\) matches masks'):
        BatchedHungarianMatcher(
            [dict(type='FocalLossCost', binary_input=True)])


@pytest.mark.parametrize('cls', [BatchedHungarianMatcher, FlattenedMatcher])
@pytest.mark.parametrize('chunk', [1, 2**16])
@pytest.mark.parametrize('cost_cfgs', [RTDETR_COSTS, OTHER_COSTS])
@pytest.mark.parametrize('num_classes', [3, 40])  # fewer / more than GTs
def test_cost_blocks_are_bitwise_mmdets(monkeypatch, cls, chunk, cost_cfgs,
                                        num_classes):
    """Every cost entry equals mmdet's, computed per image, bit for bit,
    whether images are grouped (chunk=1: one image per group) or not."""
    monkeypatch.setattr(matcher_module, '_CHUNK', chunk)
    gen = torch.Generator().manual_seed(11)
    num_gts = [4, 0, 9, 1, 7]
    problem = _random_problem(
        gen, num_gts, num_queries=20, num_classes=num_classes)
    blocks = cls(cost_cfgs).cost_blocks(*problem)
    for b, block in enumerate(blocks):
        ref = _reference_costs(cost_cfgs, *(p[b] for p in problem))
        assert block.shape == (20, num_gts[b])
        assert torch.equal(block, ref), b
