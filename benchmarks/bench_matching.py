"""BatchedHungarianMatcher against mmdet's HungarianAssigner, in one run.

Problem: one RT-DETR training step matches 7 times (6 decoder layers and
the encoder output), each time with new predictions: batch 16, 300
queries, 80 classes, 10 / 50 / 100 GTs per image. Three matchers, all with
mmdet's RT-DETR match costs (focal 2.0, L1 5.0 on cxcywh, GIoU 2.0):

* ``ours``: BatchedHungarianMatcher; each cost term once per batch, on the
  (image, query, GT) blocks each image needs; one host copy.
* ``flat``: the same matcher with every term on the flattened batch (all
  ``B * Q`` queries against all ``sum(n_i)`` GTs, then the diagonal
  blocks): the off-diagonal blocks are wasted work.
* ``mmdet``: ``HungarianAssigner.assign`` once per image, fed normalized
  xyxy boxes with ``img_shape=(1, 1)`` so that all three see the same
  costs.
* ``ultra``: ultralytics' RT-DETR ``HungarianMatcher`` (8.2.103, imported
  offline, see ``tests/reference_ultralytics.py``) with the same weights
  (class 2, L1 5, GIoU 2). Its costs differ from mmdet's in rounding (focal
  eps 1e-8 instead of 1e-12, L1 on the cxcywh inputs, ``1 - GIoU``), so
  its assignments are compared, not required equal: ``ultra agree`` is the
  fraction of image matchings equal to mmdet's.

Per case: median seconds per step, the ratios, and whether every
assignment of ``ours`` and ``flat`` equals mmdet's (``gt_inds > 0``: query
matched to GT ``gt_inds - 1``). Calls alternate so machine noise hits all
alike::

    python benchmarks/bench_matching.py [--device cpu|cuda] [--repeats 5]
        [--gts 10 50 100]
"""
import argparse
import os.path as osp
import statistics
import sys
import time

# From a clone, measure the clone's package, not an installed copy.
_REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, _REPO)

import scipy  # noqa: E402
import torch  # noqa: E402
from mmdet.models.task_modules.assigners import HungarianAssigner  # noqa
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy  # noqa: E402
from mmengine.structures import InstanceData  # noqa: E402

from benchmarks.machine import describe  # noqa: E402
from engine_plugins.task_modules import BatchedHungarianMatcher  # noqa: E402
from tests import reference_ultralytics as oracle  # noqa: E402

BATCH, QUERIES, NUM_CLASSES, ROUNDS = 16, 300, 80, 7
MATCH_COSTS = [
    dict(type='FocalLossCost', weight=2.0, alpha=0.25, gamma=2.0),
    dict(type='BBoxL1Cost', weight=5.0, box_format='xywh'),
    dict(type='IoUCost', iou_mode='giou', weight=2.0)
]


class FlattenedMatcher(BatchedHungarianMatcher):
    """Every cost term on the flattened batch."""

    @staticmethod
    def _batched_kind(cost):
        return None


def random_boxes(shape, gen):
    """Normalized cxcywh boxes, 2-60 % of the image side, inside it."""
    wh = torch.rand(*shape, 2, generator=gen) * 0.58 + 0.02
    cxy = wh / 2 + torch.rand(*shape, 2, generator=gen) * (1 - wh)
    return torch.cat([cxy, wh], -1)


def make_step(num_gts, device, seed=0):
    """GTs of one batch and the predictions of its ``ROUNDS`` matchings."""
    gen = torch.Generator().manual_seed(seed)
    gt_labels = [
        torch.randint(0, NUM_CLASSES, (num_gts, ), generator=gen)
        for _ in range(BATCH)
    ]
    gt_boxes = [random_boxes((num_gts, ), gen) for _ in range(BATCH)]
    rounds = [(torch.randn(BATCH, QUERIES, NUM_CLASSES, generator=gen) - 2,
               random_boxes((BATCH, QUERIES), gen)) for _ in range(ROUNDS)]
    move = lambda ts: [t.to(device) for t in ts]  # noqa: E731
    return (move(gt_labels), move(gt_boxes),
            [tuple(move(r)) for r in rounds])


def mmdet_per_image(assigner, logits, boxes, gt_labels, gt_boxes):
    matches = []
    for b in range(len(gt_labels)):
        result = assigner.assign(
            InstanceData(scores=logits[b], bboxes=bbox_cxcywh_to_xyxy(
                boxes[b])),
            InstanceData(
                labels=gt_labels[b], bboxes=bbox_cxcywh_to_xyxy(gt_boxes[b])),
            img_meta=dict(img_shape=(1, 1)))
        query = (result.gt_inds > 0).nonzero().flatten()
        matches.append((query, result.gt_inds[query] - 1))
    return matches


def ultralytics_matches(matcher, logits, boxes, gt_labels, gt_boxes):
    sizes = [len(g) for g in gt_boxes]
    pairs = matcher(boxes, logits, torch.cat(gt_boxes), torch.cat(gt_labels),
                    sizes)
    starts = [sum(sizes[:b]) for b in range(len(sizes))]
    # its GT indices count over the whole batch; its queries are sorted
    return [(q, g - start) for (q, g), start in zip(pairs, starts)]


def run_case(reference, num_gts, device, repeats):
    gt_labels, gt_boxes, rounds = make_step(num_gts, device)
    ours, flat = BatchedHungarianMatcher(MATCH_COSTS), FlattenedMatcher(
        MATCH_COSTS)
    assigner = HungarianAssigner(MATCH_COSTS)
    impls = dict(
        ours=lambda r: ours(*r, gt_labels, gt_boxes),
        flat=lambda r: flat(*r, gt_labels, gt_boxes),
        mmdet=lambda r: mmdet_per_image(assigner, *r, gt_labels, gt_boxes),
        ultra=lambda r: ultralytics_matches(reference, *r, gt_labels,
                                            gt_boxes))
    times = {k: [] for k in impls}
    outs = {}
    for _ in range(repeats):
        for name, fn in impls.items():
            start = time.perf_counter()
            outs[name] = [fn(r) for r in rounds]  # one step
            if device == 'cuda':
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - start)

    def same(name):
        return [
            torch.equal(q.cpu(), q_ref.cpu())
            and torch.equal(g.cpu(), g_ref.cpu())
            for step, ref in zip(outs[name], outs['mmdet'])
            for (q, g), (q_ref, g_ref) in zip(step, ref)
        ]

    identical = {name: all(same(name)) for name in ('ours', 'flat')}
    agree = statistics.mean(same('ultra'))
    return ({k: statistics.median(v)
             for k, v in times.items()}, identical, agree)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--gts', type=int, nargs='+', default=[10, 50, 100])
    args = parser.parse_args(argv)
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: torch sees no CUDA device here')
    modules = oracle.import_ultralytics('ultralytics.models.utils.ops')
    if modules is None:
        parser.error('the reference is missing: pip install --no-deps '
                     f'ultralytics=={oracle.ORACLE_VERSION}')
    reference = modules[0].HungarianMatcher(
        cost_gain=dict(**{'class': 2}, bbox=5, giou=2), alpha=0.25,
        gamma=2.0)
    print(f'{describe(args.device)}, scipy {scipy.__version__}, '
          f'ultralytics {oracle.ultralytics_version()}')
    print(f'repeats={args.repeats} batch={BATCH} queries={QUERIES} '
          f'classes={NUM_CLASSES} rounds/step={ROUNDS}')
    print(f'{"GTs/img":>7} {"ours s":>8} {"flat s":>8} {"mmdet s":>8} '
          f'{"ultra s":>8} {"mmdet/ours":>10} {"ultra/ours":>10} '
          f'{"flat/ours":>9} {"ultra agree":>11} identical(ours, flat)')
    all_identical = True
    for num_gts in args.gts:
        times, identical, agree = run_case(reference, num_gts, args.device,
                                           args.repeats)
        all_identical &= all(identical.values())
        print(f'{num_gts:>7} {times["ours"]:>8.3f} {times["flat"]:>8.3f} '
              f'{times["mmdet"]:>8.3f} {times["ultra"]:>8.3f} '
              f'{times["mmdet"] / times["ours"]:>10.2f} '
              f'{times["ultra"] / times["ours"]:>10.2f} '
              f'{times["flat"] / times["ours"]:>9.2f} {agree:>11.1%} '
              f'{identical["ours"]}, {identical["flat"]}', flush=True)
    print('seconds per step of 7 matchings; ratios above 1 mean ours is '
          'faster')
    return 0 if all_identical else 1


if __name__ == '__main__':
    sys.exit(main())
