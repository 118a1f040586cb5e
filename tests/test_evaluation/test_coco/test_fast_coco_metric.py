"""FastCocoMetric: pycocotools' 12 box stats, bit for bit, with either
backend, on a synthetic problem and on the demo shapes."""
import contextlib
import copy
import io
import json
import os.path as osp
from unittest import mock

import numpy as np
import pytest
import torch
from faster_coco_eval import COCO as FasterCOCO
from faster_coco_eval import COCOeval_faster
from mmdet.evaluation import CocoMetric
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from benchmarks.bench_coco_eval import as_results, make_problem
from engine_plugins.evaluation.coco import (FastCocoMetric, match_pycocotools,
                                            stat_names)
from engine_plugins.registry import METRICS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
DEMO_VAL = osp.join(REPO, 'data', 'demo_shapes', 'annotations', 'val.json')
BACKENDS = ('faster_coco_eval', 'pycocotools')
LOG = 'engine_plugins.evaluation.coco.fast_coco_metric.print_log'


@pytest.fixture(scope='module')
def synthetic(tmp_path_factory):
    """300 images, 6 classes: crowd boxes, images without ground truth or
    without detections, detections of classes absent from the image."""
    coco, preds = make_problem(300, num_classes=6, gts_per_image=3,
                               dets_per_image=20, crowd_frac=0.1,
                               no_dets_frac=0.1, seed=1)
    ann_file = str(tmp_path_factory.mktemp('coco') / 'synthetic.json')
    with open(ann_file, 'w') as f:
        json.dump(coco, f)
    return ann_file, coco, preds


def _dets(coco: dict, preds: list) -> list:
    """mmdet's result json content, through the json round trip."""
    cat_ids = [c['id'] for c in coco['categories']]
    dets = [
        dict(image_id=p['img_id'], bbox=[b[0], b[1], b[2] - b[0], b[3] - b[1]],
             score=s, category_id=cat_ids[c]) for p in preds
        for b, s, c in zip(p['bboxes'].tolist(), p['scores'].tolist(),
                           p['labels'].tolist())
    ]
    return json.loads(json.dumps(dets))


def _pycocotools(ann_file, coco, preds, max_dets, iou_thrs=None):
    """pycocotools alone, as mmdet's CocoMetric drives it."""
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(ann_file)
        dets = _dets(coco, preds)
        if dets:
            dt = gt.loadRes(dets)
        else:  # loadRes([]) raises IndexError
            dt = COCO()
            dt.dataset = dict(images=gt.dataset['images'],
                              categories=gt.dataset['categories'],
                              annotations=[])
            dt.createIndex()
        ev = COCOeval(gt, dt, 'bbox')
        ev.params.maxDets = list(max_dets)
        if iou_thrs is not None:
            ev.params.iouThrs = np.array(iou_thrs)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def _metric(ann_file, coco, **kwargs):
    metric = FastCocoMetric(ann_file=ann_file, **kwargs)
    metric.dataset_meta = dict(
        classes=tuple(c['name'] for c in coco['categories']))
    return metric


def _stats(metrics: dict, max_dets) -> list:
    return [metrics[f'bbox_{n}'] for n in stat_names(sorted(max_dets))]


def _class_ap(ev, k: int) -> float:
    p = ev.eval['precision'][:, :, k, 0, -1]
    return float(np.mean(p[p > -1])) if (p > -1).any() else float('nan')


def test_the_synthetic_problem_has_the_hard_cases(synthetic):
    _, coco, preds = synthetic
    anns = coco['annotations']
    assert sum(a['iscrowd'] for a in anns) >= 20
    areas = np.array([a['area'] for a in anns])
    for lo, hi in ((0, 32**2), (32**2, 96**2), (96**2, 1e10)):
        assert ((areas >= lo) & (areas < hi)).sum() >= 50
    with_gt = {a['image_id'] for a in anns}
    assert len(coco['images']) - len(with_gt) >= 5
    assert sum(len(p['labels']) == 0 for p in preds) >= 10
    cat_ids = [c['id'] for c in coco['categories']]
    present = {(a['image_id'], a['category_id']) for a in anns}
    absent = sum((p['img_id'], cat_ids[c]) not in present for p in preds
                 for c in p['labels'].tolist())
    assert absent >= 1000


@pytest.mark.parametrize('max_dets, iou_thrs, decimals, classwise', [
    ((1, 10, 100), None, None, True),
    ((100, 300, 1000), None, 2, False),
    ((10, 1, 100), [0.5, 0.75, 0.9], None, True),
], ids=['coco', 'mmdet-maxdets-score-ties', 'three-ious'])
def test_both_backends_give_pycocotools_stats_bit_for_bit(
        synthetic, tmp_path, max_dets, iou_thrs, decimals, classwise):
    ann_file, coco, preds = synthetic
    if decimals is not None:  # ties in score: the sort must be stable
        preds = [dict(p, scores=np.round(p['scores'], decimals))
                 for p in preds]
    ref = _pycocotools(ann_file, coco, preds, sorted(max_dets), iou_thrs)
    results = as_results(coco, preds)
    for backend in BACKENDS:
        metric = _metric(ann_file, coco, proposal_nums=max_dets,
                         iou_thrs=iou_thrs, classwise=classwise,
                         backend=backend)
        with mock.patch(LOG):
            metrics = metric.compute_metrics(results)
        assert _stats(metrics, max_dets) == ref.stats.tolist(), backend
        if classwise:
            for k, cat in enumerate(coco['categories']):
                assert metrics[f"{cat['name']}_precision"] == _class_ap(
                    ref, k), (backend, cat)


def test_match_pycocotools_makes_the_precision_array_identical(synthetic):
    ann_file, coco, preds = synthetic
    ref = _pycocotools(ann_file, coco, preds, (1, 10, 100))
    gt = FasterCOCO(ann_file)
    ev = COCOeval_faster(gt, gt.loadRes(_dets(coco, preds)), 'bbox',
                         print_function=lambda *a: None, separate_eval=True)
    ev.evaluate()
    ev.accumulate()
    # faster-coco-eval's precision of 1 true positive of 1 detection is
    # 1.0; pycocotools' is 1 / (1 + eps).
    differ = ev.eval['precision'] != ref.eval['precision']
    assert differ.any()
    assert (ev.eval['precision'][differ] == 1.0).all()
    match_pycocotools(ev)
    for key in ('precision', 'recall', 'scores'):
        assert np.array_equal(ev.eval[key], ref.eval[key]), key


def test_small_problems_where_faster_coco_eval_alone_differs(tmp_path):
    """On small problems a 1-ulp precision difference often reaches the
    means: faster-coco-eval alone then differs from pycocotools in the
    last bit, FastCocoMetric never."""
    raw_differs = 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        coco, preds = make_problem(
            int(rng.integers(2, 30)), num_classes=int(rng.integers(1, 4)),
            gts_per_image=float(rng.uniform(0.5, 3)),
            dets_per_image=int(rng.integers(1, 8)), crowd_frac=0.1,
            no_dets_frac=0.2, seed=seed)
        ann_file = str(tmp_path / f'{seed}.json')
        with open(ann_file, 'w') as f:
            json.dump(coco, f)
        ref = _pycocotools(ann_file, coco, preds, (1, 10, 100))
        metric = _metric(ann_file, coco, proposal_nums=(1, 10, 100))
        with mock.patch(LOG):
            metrics = metric.compute_metrics(as_results(coco, preds))
        assert _stats(metrics, (1, 10, 100)) == ref.stats.tolist(), seed
        dets = _dets(coco, preds)
        if dets:
            gt = FasterCOCO(ann_file)
            ev = COCOeval_faster(gt, gt.loadRes(dets), 'bbox',
                                 print_function=lambda *a: None)
            ev.run()
            raw_differs += ev.stats[:12].tolist() != ref.stats.tolist()
    assert raw_differs >= 10


def _demo_predictions(coco: dict, seed: int = 0) -> list:
    """Each box found with probability 0.8, jittered by ~8% of its size,
    plus 0-4 false positives per image; scores random, higher on hits."""
    rng = np.random.default_rng(seed)
    by_image = {img['id']: [] for img in coco['images']}
    for ann in coco['annotations']:
        by_image[ann['image_id']].append(ann)
    label = {c['id']: k for k, c in enumerate(coco['categories'])}
    preds = []
    for img in coco['images']:
        boxes, labels, scores = [], [], []
        for ann in by_image[img['id']]:
            if rng.random() < 0.8:
                x, y, w, h = ann['bbox']
                boxes.append(np.array([x, y, x + w, y + h]) +
                             rng.normal(0, 0.08, 4) * [w, h, w, h])
                labels.append(label[ann['category_id']])
                scores.append(rng.uniform(0.3, 1.0))
        for _ in range(rng.integers(0, 5)):
            x, y = rng.uniform(0, img['width'] - 20), rng.uniform(
                0, img['height'] - 20)
            w, h = rng.uniform(8, 80, 2)
            boxes.append(np.array([x, y, x + w, y + h]))
            labels.append(int(rng.integers(0, len(label))))
            scores.append(rng.uniform(0.0, 0.7))
        preds.append(
            dict(img_id=img['id'],
                 bboxes=np.array(boxes, np.float32).reshape(-1, 4),
                 scores=np.array(scores, np.float32),
                 labels=np.array(labels, np.int64)))
    return preds


def _data_samples(coco: dict, preds: list) -> list:
    sizes = {img['id']: img for img in coco['images']}
    return [
        dict(img_id=p['img_id'],
             ori_shape=(sizes[p['img_id']]['height'],
                        sizes[p['img_id']]['width']),
             pred_instances=dict(bboxes=torch.from_numpy(p['bboxes']),
                                 scores=torch.from_numpy(p['scores']),
                                 labels=torch.from_numpy(p['labels'])))
        for p in preds
    ]


@pytest.mark.parametrize('backend', BACKENDS)
def test_demo_shapes_through_process_and_evaluate(backend, capsys):
    with open(DEMO_VAL) as f:
        coco = json.load(f)
    preds = _demo_predictions(coco)
    ref = _pycocotools(DEMO_VAL, coco, preds, (1, 10, 100))
    metric = _metric(DEMO_VAL, coco, proposal_nums=(1, 10, 100),
                     backend=backend)
    samples = _data_samples(coco, preds)
    with mock.patch(LOG) as log:
        for i in range(0, len(samples), 8):
            metric.process({}, samples[i:i + 8])
        metrics = metric.evaluate(len(samples))
    names = stat_names((1, 10, 100))
    assert names == ['mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l',
                     'AR1', 'AR10', 'AR100', 'AR_s', 'AR_m', 'AR_l']
    # mmdet's key first: save_best='auto' picks it.
    assert list(metrics) == [f'coco/bbox_{n}' for n in names]
    assert list(metrics.values()) == ref.stats.tolist()
    assert metrics['coco/bbox_mAP'] == ref.stats[0] > 0.3
    assert all(type(v) is float for v in metrics.values())
    # One table, nothing from pycocotools or faster-coco-eval on stdout.
    assert log.call_count == 1
    table = log.call_args[0][0]
    for name in names:
        assert f'coco/bbox_{name} ' in table
    assert f'{ref.stats[0]:.4f}' in table
    assert capsys.readouterr().out == ''


def test_built_from_the_registry(synthetic):
    ann_file, coco, preds = synthetic
    metric = METRICS.build(
        dict(type='FastCocoMetric', ann_file=ann_file, metric='bbox'))
    assert type(metric) is FastCocoMetric
    assert metric.backend == 'faster_coco_eval'
    metric.dataset_meta = dict(
        classes=tuple(c['name'] for c in coco['categories']))
    with mock.patch(LOG):
        metrics = metric.compute_metrics(as_results(coco, preds))
    ref = _pycocotools(ann_file, coco, preds, (100, 300, 1000))
    # mmdet's default maxDets: AR100, AR300, AR1000.
    assert metrics['bbox_AR1000'] == ref.stats[8]
    assert metrics['bbox_mAP'] == ref.stats[0]


@pytest.mark.parametrize('backend', BACKENDS)
def test_a_detection_on_an_unknown_image_is_an_error(synthetic, backend):
    ann_file, coco, preds = synthetic
    preds = [p for p in preds if len(p['labels'])][:3]
    results = as_results(coco, preds)
    preds[1] = dict(preds[1], img_id=999_999)
    results[1] = (results[1][0], preds[1])
    with contextlib.redirect_stdout(io.StringIO()):
        with pytest.raises(AssertionError, match='do not correspond'):
            COCO(ann_file).loadRes(_dets(coco, preds))  # pycocotools' own
    metric = _metric(ann_file, coco, backend=backend)
    with pytest.raises(ValueError, match=r'1 image ids .*\[999999\]'):
        metric.compute_metrics(results)


@pytest.mark.parametrize('backend', BACKENDS)
def test_no_detections_give_pycocotools_zeros(synthetic, backend):
    ann_file, coco, preds = synthetic
    with contextlib.redirect_stdout(io.StringIO()):
        with pytest.raises(IndexError):
            COCO(ann_file).loadRes([])  # why mmdet's CocoMetric gives up
    empty = [dict(p, bboxes=np.zeros((0, 4), np.float32),
                  scores=np.zeros(0, np.float32),
                  labels=np.zeros(0, np.int64)) for p in preds]
    ref = _pycocotools(ann_file, coco, empty, (1, 10, 100))
    assert ref.stats.tolist() == [0.0] * 12  # every area has ground truth
    metric = _metric(ann_file, coco, proposal_nums=(1, 10, 100),
                     backend=backend)
    with mock.patch(LOG):
        for results in (as_results(coco, empty), []):
            metrics = metric.compute_metrics(results)
            assert _stats(metrics, (1, 10, 100)) == [0.0] * 12


def test_ground_truth_from_the_data_samples_matches_mmdet():
    """Without ann_file, as mmdet: the samples' instances, converted."""
    with open(DEMO_VAL) as f:
        coco = json.load(f)
    preds = _demo_predictions(coco, seed=1)
    label = {c['id']: k for k, c in enumerate(coco['categories'])}
    results = as_results(coco, preds)
    for gt, _ in results:
        gt['anns'] = [
            dict(bbox_label=label[a['category_id']],
                 bbox=[a['bbox'][0], a['bbox'][1], a['bbox'][0] + a['bbox'][2],
                       a['bbox'][1] + a['bbox'][3]], ignore_flag=0)
            for a in coco['annotations'] if a['image_id'] == gt['img_id']
        ]
    meta = dict(classes=tuple(c['name'] for c in coco['categories']))
    with contextlib.redirect_stdout(io.StringIO()), mock.patch(LOG):
        mmdet = CocoMetric(proposal_nums=(1, 10, 100))
        mmdet.dataset_meta = meta
        expected = mmdet.compute_metrics(copy.deepcopy(results))
        for backend in BACKENDS:
            metric = FastCocoMetric(proposal_nums=(1, 10, 100),
                                    backend=backend)
            metric.dataset_meta = meta
            metrics = metric.compute_metrics(copy.deepcopy(results))
            for key, value in expected.items():  # mmdet rounds to 3
                assert round(metrics[key], 3) == value, (backend, key)


def test_format_only_writes_mmdets_result_file(synthetic, tmp_path):
    ann_file, coco, preds = synthetic
    results = as_results(coco, preds[:20])
    files = {}
    for name, cls in (('mmdet', CocoMetric), ('fast', FastCocoMetric)):
        prefix = str(tmp_path / name)
        with contextlib.redirect_stdout(io.StringIO()):
            metric = cls(ann_file=ann_file, format_only=True,
                         outfile_prefix=prefix)
        metric.dataset_meta = dict(
            classes=tuple(c['name'] for c in coco['categories']))
        with mock.patch(LOG):
            assert metric.compute_metrics(results) == {}
        with open(f'{prefix}.bbox.json') as f:
            files[name] = json.load(f)
    assert files['fast'] == files['mmdet'] and len(files['fast']) > 100


@pytest.mark.parametrize('kwargs, match', [
    (dict(metric='segm'), "metric='bbox' only"),
    (dict(metric=['bbox', 'proposal']), "metric='bbox' only"),
    (dict(backend='cocoapi'), 'backend must be one of'),
    (dict(proposal_nums=(100, 300)), '3 positive maxDets'),
    (dict(metric_items=['mAP', 'AR@100']), r"unknown metric_items \['AR@100'"),
])
def test_bad_arguments_fail_at_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FastCocoMetric(**kwargs)


def test_dataset_classes_missing_from_the_file(synthetic):
    ann_file, coco, preds = synthetic
    metric = FastCocoMetric(ann_file=ann_file)
    metric.dataset_meta = dict(classes=('class_0', 'zebra'))
    with pytest.raises(ValueError, match=r"not in the file: \['zebra'\]"):
        metric.compute_metrics(as_results(coco, preds[:2]))
