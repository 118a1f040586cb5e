"""COCO box evaluation: FastCocoMetric against mmdet's CocoMetric.

One seeded COCO-like problem: ``--images`` images of 320-640 px, 80
classes (ids with gaps), Poisson(7) ground truths per image with sides
log-uniform in 4-300 px (small, medium and large), 3% crowd; 100
detections per image: each non-crowd ground truth once or twice, jittered,
10% with a wrong class, and false positives of any class, with 5% of the
images left without detections.

Timed on the same results, calls interleaved so machine noise hits all
alike, median of ``--repeats`` (construction, which reads the annotation
file, is not timed):

- ``mmdet CocoMetric``: ``compute_metrics`` (results to a json file and
  back, pycocotools' ``loadRes`` and ``COCOeval``);
- ``FastCocoMetric``, ``compute_metrics`` with each backend;
- ``faster-coco-eval alone``: ``COCOeval_faster`` evaluate / accumulate /
  summarize on ground-truth and result COCO objects built beforehand.

``x mmdet`` is mmdet's seconds over the row's (above 1: faster).
``identical`` compares the 12 stats, bit for bit, with the unrounded stats
of mmdet's own pycocotools run (mmdet returns them rounded to 3 decimals).
Exit status 0 when both FastCocoMetric backends are identical::

    OMP_NUM_THREADS=1 python benchmarks/bench_coco_eval.py [--images 500]
        [--repeats 5]
"""
import argparse
import contextlib
import io
import json
import os
import os.path as osp
import statistics
import sys
import tempfile
import time

# From a clone, measure the clone's package, not an installed copy.
_REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, _REPO)

import numpy as np  # noqa: E402
from faster_coco_eval import COCO, COCOeval_faster  # noqa: E402
from mmdet.evaluation import CocoMetric  # noqa: E402
from mmdet.evaluation.metrics import coco_metric as mmdet_coco  # noqa: E402
from mmengine.logging import MMLogger  # noqa: E402

from benchmarks.machine import describe  # noqa: E402
from engine_plugins.evaluation import coco as fast_coco  # noqa: E402

PACKAGES = ('numpy', 'pycocotools', 'faster-coco-eval', 'mmdet', 'mmengine')
MAX_DETS = (1, 10, 100)


def make_problem(num_images: int = 500,
                 num_classes: int = 80,
                 gts_per_image: float = 7.0,
                 dets_per_image: int = 100,
                 crowd_frac: float = 0.03,
                 no_dets_frac: float = 0.05,
                 score_decimals=None,
                 seed: int = 0):
    """A COCO annotation dict and mmdet-style predictions (``img_id``,
    float32 xyxy ``bboxes`` and ``scores``, int64 ``labels``), one per
    image. ``score_decimals`` rounds the scores (ties)."""
    rng = np.random.default_rng(seed)
    cat_ids = [1 + k + k // 7 for k in range(num_classes)]  # with gaps
    coco = dict(
        images=[],
        annotations=[],
        categories=[
            dict(id=c, name=f'class_{k}') for k, c in enumerate(cat_ids)
        ])
    preds = []
    for i in range(num_images):
        img_id = 1000 + 3 * i
        w, h = (int(v) for v in rng.integers(320, 641, 2))
        coco['images'].append(
            dict(id=img_id, width=w, height=h, file_name=f'{img_id}.jpg'))
        n = int(rng.poisson(gts_per_image))
        side = np.exp(rng.uniform(np.log(4), np.log(300), n))
        aspect = np.exp(rng.uniform(-0.7, 0.7, n))
        bw = np.minimum(side * aspect, w - 1)
        bh = np.minimum(side / aspect, h - 1)
        x, y = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
        labels = rng.integers(0, num_classes, n)
        crowd = rng.random(n) < crowd_frac
        for j in range(n):
            coco['annotations'].append(
                dict(
                    id=len(coco['annotations']) + 1,
                    image_id=img_id,
                    category_id=cat_ids[labels[j]],
                    bbox=[float(x[j]), float(y[j]),
                          float(bw[j]), float(bh[j])],
                    area=float(bw[j] * bh[j]),
                    iscrowd=int(crowd[j])))
        k = 0 if rng.random() < no_dets_frac else dets_per_image
        # True positives: each non-crowd ground truth once or twice.
        src = np.repeat(np.flatnonzero(~crowd), rng.integers(1, 3, n)[~crowd])
        src = src[:k]
        size = np.stack([bw, bh, bw, bh], 1)[src]
        tp = np.stack([x, y, x + bw, y + bh], 1)[src] + rng.normal(
            0, 0.1, (len(src), 4)) * size
        tp_labels = labels[src]
        wrong = rng.random(len(src)) < 0.1
        tp_labels[wrong] = rng.integers(0, num_classes, wrong.sum())
        nf = k - len(src)
        fs = np.exp(rng.uniform(np.log(4), np.log(400), nf))
        fx, fy = rng.uniform(-10, w, nf), rng.uniform(-10, h, nf)
        fp = np.stack(
            [fx, fy, fx + fs * np.exp(rng.uniform(-.5, .5, nf)), fy + fs], 1)
        scores = np.concatenate([rng.beta(5, 2, len(src)), rng.beta(1, 4, nf)])
        if score_decimals is not None:
            scores = np.round(scores, score_decimals)
        preds.append(
            dict(
                img_id=img_id,
                bboxes=np.concatenate([tp, fp]).astype(np.float32),
                scores=scores.astype(np.float32),
                labels=np.concatenate(
                    [tp_labels, rng.integers(0, num_classes,
                                             nf)]).astype(np.int64)))
    return coco, preds


def as_results(coco: dict, preds: list) -> list:
    """``(gt, pred)`` pairs as ``CocoMetric.process`` stores them."""
    sizes = {img['id']: img for img in coco['images']}
    return [(dict(
        img_id=p['img_id'],
        width=sizes[p['img_id']]['width'],
        height=sizes[p['img_id']]['height']), p) for p in preds]


class RecordingCOCOeval(mmdet_coco.COCOeval):
    """pycocotools' COCOeval that keeps the last instance: mmdet's metric
    returns its stats rounded."""
    last = None

    def summarize(self):
        super().summarize()
        RecordingCOCOeval.last = self


def faster_alone(ann_file: str, coco: dict, preds: list):
    """``COCOeval_faster`` on COCO objects built beforehand: a callable
    that runs evaluate / accumulate / summarize and returns the stats."""
    gt = COCO(ann_file)
    cat_ids = [c['id'] for c in coco['categories']]
    dets = [
        dict(image_id=p['img_id'], bbox=[b[0], b[1], b[2] - b[0], b[3] - b[1]],
             score=s, category_id=cat_ids[c]) for p in preds
        for b, s, c in zip(p['bboxes'].tolist(), p['scores'].tolist(),
                           p['labels'].tolist())
    ]
    dt = gt.loadRes(dets)

    def run():
        ev = COCOeval_faster(gt, dt, 'bbox', print_function=lambda *a: None)
        ev.params.maxDets = list(MAX_DETS)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        return ev.stats[:12]

    return run


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--images', type=int, default=500)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    MMLogger.get_instance('bench_coco_eval', log_level='WARNING')
    mmdet_coco.COCOeval = RecordingCOCOeval
    coco, preds = make_problem(args.images, seed=args.seed)
    results = as_results(coco, preds)
    meta = dict(classes=[c['name'] for c in coco['categories']])
    with tempfile.TemporaryDirectory() as tmp:
        ann_file = osp.join(tmp, 'instances.json')
        with open(ann_file, 'w') as f:
            json.dump(coco, f)
        with contextlib.redirect_stdout(io.StringIO()):
            mmdet = CocoMetric(ann_file=ann_file, proposal_nums=MAX_DETS)
        impls = {'mmdet CocoMetric (pycocotools)': mmdet}
        for backend in ('faster_coco_eval', 'pycocotools'):
            impls[f'FastCocoMetric {backend}'] = fast_coco.FastCocoMetric(
                ann_file=ann_file, proposal_nums=MAX_DETS, backend=backend)
        for metric in impls.values():
            metric.dataset_meta = meta
        calls = {
            name: (lambda m=metric: m.compute_metrics(results))
            for name, metric in impls.items()
        }
        calls['faster-coco-eval alone'] = faster_alone(ann_file, coco, preds)
        times = {name: [] for name in calls}
        outputs = {}
        for _ in range(args.repeats):
            for name, call in calls.items():
                with contextlib.redirect_stdout(io.StringIO()):
                    start = time.perf_counter()
                    outputs[name] = call()
                    times[name].append(time.perf_counter() - start)
    reference = np.asarray(RecordingCOCOeval.last.stats)
    fast_names = [f'bbox_{n}' for n in fast_coco.stat_names(MAX_DETS)]
    for name in calls:
        if name.startswith('FastCocoMetric'):
            outputs[name] = [outputs[name][k] for k in fast_names]
    print(describe(packages=PACKAGES))
    print(f'OMP_NUM_THREADS={os.environ.get("OMP_NUM_THREADS", "unset")}, '
          f'{args.images} images, {sum(len(p["labels"]) for p in preds)} '
          f'detections, {len(coco["annotations"])} ground truths, 80 '
          f'classes, maxDets {MAX_DETS}, repeats={args.repeats} (median)')
    mmdet_s = statistics.median(times['mmdet CocoMetric (pycocotools)'])
    print(f'{"implementation":<34} {"seconds":>8} {"x mmdet":>8} '
          f'{"max |diff|":>10} identical')
    ok = True
    for name in calls:
        seconds = statistics.median(times[name])
        if name.startswith('mmdet'):
            diff, identical = 0.0, 'reference'
        else:
            stats = np.asarray(outputs[name], dtype=np.float64)
            diff = float(np.max(np.abs(stats - reference)))
            identical = bool(np.array_equal(stats, reference))
            if name.startswith('FastCocoMetric'):
                ok &= identical
        print(f'{name:<34} {seconds:>8.3f} {mmdet_s / seconds:>8.2f} '
              f'{diff:>10.1e} {identical}')
    print('FastCocoMetric stats identical' if ok else 'STATS DIFFER')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
