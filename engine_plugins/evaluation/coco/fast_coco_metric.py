"""mmdet's ``CocoMetric`` for boxes on faster-coco-eval: pycocotools'
numbers, all twelve of them, unrounded, in a fraction of the time."""
import contextlib
import gc
import io
import logging
import tempfile
import time
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from faster_coco_eval import COCO as FasterCOCO
from faster_coco_eval import COCOeval_faster
from mmdet.evaluation import CocoMetric
from mmengine.fileio import get_local_path
from mmengine.logging import print_log
from pycocotools.coco import COCO as PyCOCO
from pycocotools.cocoeval import COCOeval as PyCOCOeval

from engine_plugins.registry import METRICS

BACKENDS = ('faster_coco_eval', 'pycocotools')
AREAS = ('all', 'small', 'medium', 'large')
# pycocotools divides by tp + fp + eps, so one true positive out of one
# counted detection has precision 1 / (1 + eps); faster-coco-eval gives 1.0.
ONE_OF_ONE = 1.0 / (1.0 + np.spacing(1))


def stat_names(proposal_nums: Sequence[int]) -> List[str]:
    """Names of COCOeval's 12 box stats, in ``stats`` order, for maxDets
    ``proposal_nums`` (3 values, ascending)."""
    n1, n2, n3 = proposal_nums
    return [
        'mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l', f'AR{n1}',
        f'AR{n2}', f'AR{n3}', 'AR_s', 'AR_m', 'AR_l'
    ]


def _quiet():
    return contextlib.redirect_stdout(io.StringIO())  # pycocotools prints


def _silent(*args, **kwargs) -> None:
    pass


@contextlib.contextmanager
def _gc_paused():
    # The ~10 small objects made per detection hold no cycles, but their
    # allocation runs the cyclic collector over every live object (ground
    # truth included) again and again: a fifth of the evaluation time.
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def match_pycocotools(ev: COCOeval_faster) -> None:
    """Make ``ev.eval['precision']`` (after ``accumulate``) bit-identical to
    pycocotools'.

    pycocotools computes precision as tp / (tp + fp + eps); eps (2**-52) is
    lost to rounding once tp + fp >= 2, so the two differ only at one true
    positive out of one counted (not ignored) detection: ``ONE_OF_ONE``
    there, 1.0 in faster-coco-eval. The curve is made non-increasing
    before sampling, so the value survives at the low recall thresholds of
    a curve whose second counted detection is a false positive or missing;
    after a second true positive (2/2) both have 1.0. A second
    accumulation, at recall 2 / npig (npig: ground truths not ignored, per
    category and area range; the recall at the second true positive),
    tells the cases apart: its precision is 1.0 exactly when the first two
    counted detections are true positives.
    """
    precision = ev.eval['precision']
    ones = precision == 1.0
    if not ones.any():
        return
    p = ev._paramsEval  # what evaluate() ran with; accumulate() reads it
    npig = _valid_gt_counts(ev.cocoGt, p)
    leading_two = np.zeros(ones.shape[:1] + ones.shape[2:], dtype=bool)
    k, a = np.nonzero(npig >= 2)
    if len(k):
        probe = 2.0 / npig[k, a]  # == the recall at the second TP
        thrs = np.unique(probe)
        saved, rec_thrs = ev.eval, p.recThrs
        p.recThrs = thrs
        try:
            ev.accumulate()
            at_two = ev.eval['precision']
        finally:
            p.recThrs, ev.eval = rec_thrs, saved
        leading_two[:, k, a] = at_two[:, np.searchsorted(thrs, probe), k,
                                      a] == 1.0
    precision[ones & ~leading_two[:, None]] = ONE_OF_ONE


def _valid_gt_counts(coco: FasterCOCO, p) -> np.ndarray:
    """(categories, area ranges) counts of the ground truths COCOeval does
    not ignore (npig): not crowd, area within the range (inclusive)."""
    cat_index = {int(c): k for k, c in enumerate(p.catIds)}
    img_ids = {int(i) for i in p.imgIds}
    rows = [(cat_index[a['category_id']], a['area'])
            for a in coco.dataset['annotations']
            if a['image_id'] in img_ids and a['category_id'] in cat_index
            and not a.get('iscrowd', 0)]
    counts = np.zeros((len(cat_index), len(p.areaRng)), dtype=np.int64)
    if rows:
        cat, area = (np.array(c) for c in zip(*rows))
        for j, (lo, hi) in enumerate(p.areaRng):
            inside = (area >= lo) & (area <= hi)
            counts[:, j] = np.bincount(cat[inside], minlength=len(cat_index))
    return counts


@METRICS.register_module()
class FastCocoMetric(CocoMetric):
    """COCO box AP/AR as mmdet's ``CocoMetric`` computes it, on
    faster-coco-eval, with all 12 stats logged unrounded.

    Every stat, and the precision array behind the per-class table, is
    bit-identical to pycocotools' (``backend='pycocotools'`` runs
    pycocotools itself). faster-coco-eval matches in C++ and rounds
    precision differently in one case, which :func:`match_pycocotools`
    puts back. Detections go to the evaluator as arrays and dicts, not
    through a json file. With 3 maxDets ``(n1, n2, n3)`` the keys are, in
    this order (``save_best='auto'`` picks the first):

    - ``bbox_mAP``, ``bbox_mAP_50``, ``bbox_mAP_75``: AP at IoU 0.50:0.95,
      0.50, 0.75 (mmdet's names);
    - ``bbox_mAP_s``, ``bbox_mAP_m``, ``bbox_mAP_l``: AP by area;
    - ``bbox_AR{n1}``, ``bbox_AR{n2}``, ``bbox_AR{n3}``: AR at each maxDets;
    - ``bbox_AR_s``, ``bbox_AR_m``, ``bbox_AR_l``: AR by area at ``n3``;
    - with ``classwise``, ``{class}_precision`` (mmdet's key) per class.

    An area range or IoU threshold with no ground truth gives -1, as in
    pycocotools. No detections at all give zeros (pycocotools' COCOeval on
    an empty result), where mmdet's ``CocoMetric`` logs an error and
    returns nothing. A detection on an image the annotation file lacks is a
    ``ValueError`` (pycocotools asserts). mmdet's ``use_mp_eval`` and
    ``file_client_args`` are not taken.

    Args:
        ann_file: COCO json; None converts the data samples' ground truth
            (mmdet's ``gt_to_coco_json``).
        metric: ``'bbox'`` only; mmdet's ``CocoMetric`` does masks and
            proposals.
        classwise: Also log a per-class AP table and return its APs.
        proposal_nums: The 3 maxDets. mmdet's default (100, 300, 1000)
            makes ``mAP`` the AP at 1000 detections per image; COCO's
            standard is (1, 10, 100).
        iou_thrs: IoU thresholds (default 0.50:0.05:0.95).
        metric_items: Stat names (``'mAP'``, ``'AR100'``, ...) to return;
            None returns all 12.
        format_only: Only write the result json (needs
            ``outfile_prefix``).
        outfile_prefix: Write ``{prefix}.bbox.json`` (and
            ``{prefix}.gt.json`` without ``ann_file``) as mmdet does.
        backend_args: File backend arguments for ``ann_file``.
        collect_device: Device results are gathered on across ranks.
        prefix: Key prefix (default ``'coco'``).
        sort_categories: Sort the file's categories by id (Objects365).
        backend: ``'faster_coco_eval'`` or ``'pycocotools'``.

    Example:
        >>> val_evaluator = dict(
        ...     type='FastCocoMetric',
        ...     ann_file='data/coco/annotations/instances_val2017.json',
        ...     metric='bbox', proposal_nums=(1, 10, 100), classwise=True)
    """

    default_prefix: Optional[str] = 'coco'

    def __init__(self,
                 ann_file: Optional[str] = None,
                 metric: Union[str, List[str]] = 'bbox',
                 classwise: bool = False,
                 proposal_nums: Sequence[int] = (100, 300, 1000),
                 iou_thrs: Optional[Union[float, Sequence[float]]] = None,
                 metric_items: Optional[Sequence[str]] = None,
                 format_only: bool = False,
                 outfile_prefix: Optional[str] = None,
                 backend_args: Optional[dict] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 sort_categories: bool = False,
                 backend: str = 'faster_coco_eval') -> None:
        metrics = metric if isinstance(metric, list) else [metric]
        if metrics != ['bbox']:
            raise ValueError(
                f"FastCocoMetric evaluates metric='bbox' only, got {metric!r};"
                " use type='mmdet.CocoMetric' for segm or proposal")
        if backend not in BACKENDS:
            raise ValueError(
                f'backend must be one of {BACKENDS}, got {backend!r}')
        nums = sorted(int(n) for n in proposal_nums)
        if len(nums) != 3 or nums[0] < 1:
            raise ValueError('proposal_nums must be 3 positive maxDets (the '
                             f'12 COCO stats need 3), got {proposal_nums}')
        unknown = set(metric_items or ()) - set(stat_names(nums))
        if unknown:
            raise ValueError(f'unknown metric_items {sorted(unknown)}; '
                             f'choose from {stat_names(nums)}')
        super().__init__(
            metric='bbox',
            classwise=classwise,
            proposal_nums=nums,
            iou_thrs=iou_thrs,
            metric_items=metric_items,
            format_only=format_only,
            outfile_prefix=outfile_prefix,
            backend_args=backend_args,
            collect_device=collect_device,
            prefix=prefix)
        self.iou_thrs = np.array(self.iou_thrs, dtype=np.float64, ndmin=1)
        self.backend = backend
        self.ann_file = ann_file
        self.sort_categories = sort_categories
        if ann_file is not None:
            with get_local_path(ann_file, backend_args=backend_args) as path:
                self._coco_api = self._load_gt(path)

    def _load_gt(self, path: str) -> Union[FasterCOCO, PyCOCO]:
        if self.backend == 'faster_coco_eval':
            coco = FasterCOCO(path)
        else:
            with _quiet():
                coco = PyCOCO(path)
        # mmdet's converter leaves the key out when there are no boxes.
        coco.dataset.setdefault('annotations', [])
        if self.sort_categories:  # as mmdet's CocoMetric
            coco.cats = {i: coco.cats[i] for i in sorted(coco.cats)}
            coco.dataset['categories'].sort(key=lambda c: c['id'])
        return coco

    def _category_ids(self) -> List[int]:
        classes = (self.dataset_meta or {}).get('classes')
        if classes is None:  # standalone use: labels index the file's order
            return self._coco_api.getCatIds()
        ids = self._coco_api.getCatIds(catNms=list(classes))
        if len(ids) != len(classes):
            names = {c['name'] for c in self._coco_api.dataset['categories']}
            raise ValueError(
                f'{self.ann_file}: {len(ids)} categories match the '
                f'{len(classes)} dataset classes; not in the file: '
                f'{[c for c in classes if c not in names]}')
        return ids

    def _detections(self, preds: Sequence[dict]) -> Tuple[np.ndarray, ...]:
        """Image ids, xywh boxes, scores and category ids, one row per
        detection, with the floats mmdet's json round trip gives."""
        counts = [len(p['labels']) for p in preds]
        img = np.repeat(
            np.array([p.get('img_id', i) for i, p in enumerate(preds)],
                     dtype=np.int64), counts)
        if not len(img):
            return img, np.zeros((0, 4)), np.zeros(0), img.copy()
        boxes = np.concatenate([np.asarray(p['bboxes']).reshape(-1, 4)
                                for p in preds]).astype(np.float64)
        boxes[:, 2:] -= boxes[:, :2]  # xyxy -> xywh, in float64 as mmdet
        scores = np.concatenate([np.asarray(p['scores']).reshape(-1)
                                 for p in preds]).astype(np.float64)
        labels = np.concatenate([np.asarray(p['labels']).reshape(-1)
                                 for p in preds]).astype(np.int64)
        if labels.min() < 0 or labels.max() >= len(self.cat_ids):
            raise ValueError(
                f'predicted labels span {labels.min()}..{labels.max()}; '
                f'the {len(self.cat_ids)} classes take 0..'
                f'{len(self.cat_ids) - 1}')
        known = np.isin(img, self.img_ids)
        if not known.all():
            missing = np.unique(img[~known])
            raise ValueError(
                f'detections on {len(missing)} image ids that are not in '
                f'the annotation file {self.ann_file} (first: '
                f'{missing[:5].tolist()}); the val dataset and the '
                'metric must use the same annotation file')
        return img, boxes, scores, np.asarray(self.cat_ids)[labels]

    def _results_coco(self, img, boxes, scores, cats):
        gt = self._coco_api
        if self.backend == 'pycocotools' and len(img):
            anns = [
                dict(image_id=i, bbox=b, score=s, category_id=c)
                for i, b, s, c in zip(img.tolist(), boxes.tolist(),
                                      scores.tolist(), cats.tolist())
            ]
            with _quiet():
                return gt.loadRes(anns)
        # What loadRes builds, less the box polygons bbox IoU never reads
        # (pycocotools' loadRes also fails on an empty list).
        area = (boxes[:, 2] * boxes[:, 3]).tolist()
        anns = [
            dict(image_id=i, bbox=b, score=s, category_id=c, area=ar,
                 id=n, iscrowd=0)
            for n, (i, b, s, c, ar) in enumerate(
                zip(img.tolist(), boxes.tolist(), scores.tolist(),
                    cats.tolist(), area), 1)
        ]
        api = FasterCOCO if self.backend == 'faster_coco_eval' else PyCOCO
        with _quiet():
            coco = api()
            coco.dataset = dict(images=gt.dataset['images'],
                                categories=gt.dataset['categories'],
                                annotations=anns)
            coco.createIndex()
        return coco

    def _evaluate(self, img, boxes, scores, cats):
        """Run COCOeval (bbox) with this metric's parameters; returns the
        evaluator after ``summarize`` (``stats``, ``eval``, ``params``)."""
        gt, dt = self._coco_api, self._results_coco(img, boxes, scores, cats)
        if self.backend == 'faster_coco_eval':
            ev = COCOeval_faster(gt, dt, 'bbox', print_function=_silent,
                                 separate_eval=True)
        else:
            ev = PyCOCOeval(gt, dt, 'bbox')
        ev.params.catIds = list(self.cat_ids)
        ev.params.imgIds = list(self.img_ids)
        ev.params.maxDets = list(self.proposal_nums)
        ev.params.iouThrs = self.iou_thrs
        with _quiet():
            ev.evaluate()
            ev.accumulate()
            if self.backend == 'faster_coco_eval':
                match_pycocotools(ev)
            ev.summarize()
        return ev

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Evaluate ``(gt, pred)`` pairs from :meth:`process`."""
        gts, preds = zip(*results) if results else ((), ())
        if self._coco_api is None:
            with tempfile.TemporaryDirectory() as tmp:
                prefix = self.outfile_prefix or f'{tmp}/results'
                self._coco_api = self._load_gt(
                    self.gt_to_coco_json(gts, prefix))
        if self.cat_ids is None:
            self.cat_ids = self._category_ids()
        if self.img_ids is None:
            self.img_ids = self._coco_api.getImgIds()
        if self.outfile_prefix is not None and preds:
            files = self.results2json(preds, self.outfile_prefix)
            print_log(f"results are saved in {files['bbox']}", 'current')
        if self.format_only:
            return OrderedDict()
        start = time.perf_counter()
        detections = self._detections(preds)
        with _gc_paused():
            ev = self._evaluate(*detections)
        names = stat_names(self.proposal_nums)
        stats = dict(zip(names, (float(s) for s in ev.stats[:12])))
        metrics = OrderedDict(
            (f'bbox_{n}', stats[n]) for n in self.metric_items or names)
        self._log_stats(stats, len(detections[0]),
                        time.perf_counter() - start)
        if self.classwise:
            metrics.update(self._classwise(ev))
        return metrics

    def _log_stats(self, stats: Dict[str, float], num_dets: int,
                   seconds: float) -> None:
        thrs, n3 = self.iou_thrs, self.proposal_nums[-1]
        iou_all = f'{thrs[0]:.2f}:{thrs[-1]:.2f}'
        rows = [(iou_all, 'all', n3), ('0.50', 'all', n3),
                ('0.75', 'all', n3)] + [(iou_all, a, n3) for a in AREAS[1:]]
        rows += [(iou_all, 'all', n) for n in self.proposal_nums]
        rows += [(iou_all, a, n3) for a in AREAS[1:]]
        lines = [
            f'COCO bbox ({self.backend}, {len(self.img_ids)} images, '
            f'{num_dets} detections, {seconds:.2f} s):',
            f"{'key':<20} {'IoU':<9} {'area':<6} {'maxDets':>7}  value"
        ]
        for (name, value), (iou, area, max_dets) in zip(stats.items(), rows):
            key = f'bbox_{name}'
            key = f'{self.prefix}/{key}' if self.prefix else key
            lines.append(f'{key:<20} {iou:<9} {area:<6} {max_dets:>7}  '
                         f'{value:.4f}')
        print_log('\n'.join(lines), logger='current', level=logging.INFO)

    def _classwise(self, ev) -> Dict[str, float]:
        """Per-class AP (all IoUs, 0.50, 0.75, by area) at the largest
        maxDets, logged as a table; returns ``{class}_precision``."""
        precision = ev.eval['precision']  # [T, R, K, A, M]
        # evaluate() sorted catIds; look each class up rather than assume
        # the dataset's order.
        index = {int(c): k for k, c in enumerate(ev.params.catIds)}
        ious = [
            slice(None), *(np.flatnonzero(self.iou_thrs == t)
                           for t in (0.5, 0.75))
        ]

        def mean(p: np.ndarray) -> float:
            p = p[p > -1]
            return float(np.mean(p)) if p.size else float('nan')

        rows, metrics = [], OrderedDict()
        for cat_id in self.cat_ids:
            k = index[int(cat_id)]
            aps = [mean(precision[t, :, k, 0, -1]) for t in ious]
            aps += [mean(precision[:, :, k, a, -1]) for a in (1, 2, 3)]
            name = self._coco_api.cats[cat_id]['name']
            metrics[f'{name}_precision'] = aps[0]
            rows.append(f'{name:<20} ' + ' '.join(f'{v:7.4f}' for v in aps))
        header = f"{'category':<20} " + ' '.join(
            f'{h:>7}' for h in ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m',
                                'mAP_l'))
        print_log(
            '\n'.join(['per-class bbox AP:', header] + rows),
            logger='current',
            level=logging.INFO)
        return metrics
