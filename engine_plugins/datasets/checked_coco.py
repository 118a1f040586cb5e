"""mmdet's ``CocoDataset`` with its annotation file and images checked at
load time.

mmdet's loader drops the boxes it cannot use without a word, trains on a
dataset left with no boxes (a loss warning, much later), and fails on a
malformed file deep inside pycocotools without naming it.
:class:`CheckedCocoDataset` reads the file itself, checks it
(:mod:`.coco_checks`), names the file, annotation, field and value of each
problem, and hands the checked content to mmdet's own loader.
"""
import json
import logging
import os
import os.path as osp
from collections import Counter
from typing import Any, Dict, List

import numpy as np
from mmdet.datasets import CocoDataset
from mmengine.fileio import LocalBackend, get_file_backend, get_local_path
from mmengine.logging import print_log

from engine_plugins.registry import DATASETS
from .coco_checks import (DESCRIPTIONS, DROPPED, INVALID, REASONS,
                          DataCheckError, check_annotations, check_classes,
                          check_structure, first_few)

DATA_CHECK_MODES = ('report', 'strict')
IMAGE_DROPS = {
    'no_annotations': 'no annotations (filter_empty_gt)',
    'min_size': 'shorter side under filter_cfg.min_size',
}


def _counts(counts: Dict[str, int]) -> str:
    return ', '.join(f'{DESCRIPTIONS.get(k, IMAGE_DROPS.get(k, k))}: {n}'
                     for k, n in counts.items())


@DATASETS.register_module(name='CheckedCocoDataset')
class CheckedCocoDataset(CocoDataset):
    """mmdet's ``CocoDataset``, which checks the annotation file and the
    images before it loads them.

    Raised in both modes, as :class:`DataCheckError` unless noted: the
    annotation file or ``data_root`` missing (``FileNotFoundError``, naming
    the config key); a file that is not JSON (line and column); a missing
    ``images``, ``annotations`` or ``categories`` key; malformed images,
    categories or duplicate ids; configured classes the file lacks or
    orders differently; image files missing or empty; no image left, or
    (for training) no box left.

    Per annotation, counted by reason: invalid (``image_id`` or
    ``category_id`` unknown, ``bbox`` not 4 numbers, width or height <= 0,
    outside the image by more than ``bbox_tolerance`` pixels, ``area``
    missing or <= 0), or left out by mmdet's loader by design (``ignore``,
    under 1 px, a category not configured, ``iscrowd``). Images dropped by
    ``filter_cfg`` are counted as well. The counts, with the first offenders,
    are logged once and kept in :attr:`drop_report`.

    Args:
        data_check: ``'report'`` drops invalid annotations, logs every
            count once and goes on; ``'strict'`` raises on any invalid or
            left-out annotation (crowd boxes are kept as ignored regions
            and pass).
        bbox_tolerance: Pixels a box may extend past its image.
        **kwargs: ``CocoDataset`` arguments.

    Example:
        >>> train_dataloader = dict(dataset=dict(
        ...     type='CheckedCocoDataset',  # or 'CocoDataset' in our scope
        ...     data_root='data/coco/',
        ...     ann_file='annotations/instances_train2017.json',
        ...     data_prefix=dict(img='train2017/'),
        ...     data_check='strict', pipeline=[]))
    """

    def __init__(self,
                 *args,
                 data_check: str = 'report',
                 bbox_tolerance: float = 1.0,
                 **kwargs) -> None:
        if data_check not in DATA_CHECK_MODES:
            raise ValueError(f'data_check must be one of {DATA_CHECK_MODES},'
                             f' got {data_check!r}')
        self.data_check = data_check
        self.bbox_tolerance = bbox_tolerance
        self.drop_report: Dict[str, Any] = {}
        # As configured, before data_root is joined: errors name the keys.
        self._configured = dict(
            ann_file=kwargs.get('ann_file', args[0] if args else ''),
            data_root=kwargs.get('data_root',
                                 args[2] if len(args) > 2 else ''))
        super().__init__(*args, **kwargs)

    def _is_local(self, path: str) -> bool:
        try:
            backend = get_file_backend(path, backend_args=self.backend_args)
        except Exception:  # a backend whose client is not installed
            return False
        return isinstance(backend, LocalBackend)

    def _read_ann_file(self) -> Any:
        ann_file, data_root = (self._configured['ann_file'],
                               self._configured['data_root'])
        keys = f'ann_file={ann_file!r}, data_root={data_root!r}'
        if not self.ann_file:
            raise FileNotFoundError(f'{type(self).__name__}: ann_file is not '
                                    'set')
        if self._is_local(self.ann_file) and not osp.isfile(self.ann_file):
            if data_root and not osp.isdir(data_root):
                raise FileNotFoundError(
                    f'data_root {data_root!r} does not exist (annotation '
                    f'file {self.ann_file}; {keys})')
            raise FileNotFoundError(
                f'annotation file not found: {self.ann_file} ({keys})')
        with get_local_path(
                self.ann_file, backend_args=self.backend_args) as path:
            with open(path, 'rb') as f:
                try:
                    return json.load(f)
                except json.JSONDecodeError as exc:
                    raise DataCheckError(
                        f'{self.ann_file} is not valid JSON: {exc.msg} at '
                        f'line {exc.lineno}, column {exc.colno}') from exc
                except UnicodeDecodeError as exc:
                    raise DataCheckError(
                        f'{self.ann_file} is not JSON text: {exc.reason} at '
                        f'byte {exc.start}') from exc

    def _check_images(self, images: List[Dict]) -> None:
        """Stat each image (local files only): a missing or empty file
        would stop training at its first epoch, or hours into it."""
        prefix = self.data_prefix.get('img')
        if prefix is None:
            raise DataCheckError(
                f"{type(self).__name__}: data_prefix has no 'img' key "
                f"({self.data_prefix}); images are data_prefix['img'] + "
                'file_name')
        if not images or not self._is_local(prefix or '.'):
            return
        missing, empty = [], []
        for img in images:
            path = osp.join(prefix, img['file_name'])
            try:
                if os.stat(path).st_size == 0:
                    empty.append(path)
            except OSError:
                missing.append(path)
        if not (missing or empty):
            return
        parts = []
        if missing:
            parts.append(f'{len(missing)} missing ({first_few(missing)})')
        if empty:
            parts.append(f'{len(empty)} empty, 0 bytes ({first_few(empty)})')
        where = (f"the folder {prefix} (data_prefix['img']) does not exist"
                 if prefix and not osp.isdir(prefix) else
                 f"paths are data_prefix['img'] ({prefix!r}) + file_name")
        raise DataCheckError(f'{self.ann_file}: of {len(images)} image files,'
                             f" {'; '.join(parts)}; {where}")

    def _describe(self, counts: Dict[str, int], total: int) -> str:
        examples = self.drop_report.get('examples', {})
        parts = [
            f'{DESCRIPTIONS[k]}: {n} ({first_few(examples.get(k, []))})'
            for k, n in counts.items()
        ]
        hint = self.drop_report.get('hint')
        return (f'{sum(counts.values())} of {total} annotations: ' +
                '; '.join(parts) + (f'; {hint}' if hint else ''))

    def load_data_list(self) -> List[dict]:
        """Read and check the file, then load it with mmdet's loader."""
        coco = self._read_ann_file()
        check_structure(coco, self.ann_file, self.test_mode)
        check_classes(coco, self.ann_file, self.metainfo['classes'])
        self._check_images(coco['images'])
        codes, examples, hint = check_annotations(coco,
                                                  self.metainfo['classes'],
                                                  self.bbox_tolerance)
        found = np.bincount(codes[codes >= 0], minlength=len(REASONS))
        counts = dict(zip([key for key, _, _ in REASONS], found.tolist()))
        self.drop_report = dict(
            invalid={
                k: counts[k]
                for k, _, _ in INVALID if counts[k]
            },
            dropped={
                k: counts[k]
                for k, _, _ in DROPPED if counts[k]
            },
            images_dropped={},
            examples=examples,
            hint=hint,
            num_annotations=len(codes))
        # A crowd box is not lost: mmdet keeps it as an ignored region, so
        # COCO itself passes the strict check.
        problems = {
            **self.drop_report['invalid'],
            **self.drop_report['dropped']
        }
        problems.pop('iscrowd', None)
        if self.data_check == 'strict' and problems:
            raise DataCheckError(
                f"{self.ann_file} (data_check='strict'): "
                f'{self._describe(problems, len(codes))}. Fix the file, or '
                "set data_check='report' (no --strict-data) to train without "
                'them')
        if self.drop_report['invalid']:
            invalid = (codes >= 0) & (codes < len(INVALID))
            coco['annotations'] = [
                ann for ann, bad in zip(coco['annotations'], invalid)
                if not bad
            ]
        index = self.COCOAPI()
        index.dataset = coco
        index.createIndex()
        # mmdet's wrapper aliases these in __init__, before an index
        # exists; point them at the index just built.
        index.img_ann_map, index.cat_img_map = index.imgToAnns, index.catToImgs
        # mmdet's loader builds its index from a path; hand it the checked
        # content instead of reading (or downloading) the file twice.
        self.COCOAPI = lambda _: index
        try:
            return super().load_data_list()
        finally:
            del self.COCOAPI

    def filter_data(self) -> List[dict]:
        """mmdet's filter, then the image counts, the empty-dataset errors
        and the one log line of the report."""
        kept = super().filter_data()
        kept_ids = {info['img_id'] for info in kept}
        min_size = (self.filter_cfg or {}).get('min_size', 0)
        image_drops: Counter = Counter()
        lost = 0  # boxes on images dropped for their size
        for info in self.data_list:
            if info['img_id'] in kept_ids:
                continue
            if min(info['width'], info['height']) < min_size:
                image_drops['min_size'] += 1
                lost += sum(not i.get('ignore_flag', 0)
                            for i in info['instances'])
            else:
                image_drops['no_annotations'] += 1
        report = self.drop_report
        report['images_dropped'] = dict(image_drops)
        report['num_images'] = len(kept)
        report['num_boxes'] = sum(not i.get('ignore_flag', 0) for info in kept
                                  for i in info['instances'])
        summary = self._summary()
        if self.data_check == 'strict' and lost:
            raise DataCheckError(
                f"{self.ann_file} (data_check='strict'): {lost} boxes are on "
                f"{image_drops['min_size']} images under filter_cfg.min_size"
                f'={min_size}; {summary}')
        if not kept:
            raise DataCheckError(f'{self.ann_file}: no image left; {summary}')
        if not self.test_mode and not report['num_boxes']:
            ignored = sum(len(info['instances']) for info in kept)
            if ignored:
                # Boxes that load but are all flagged ignored: the losses
                # see only background.
                raise DataCheckError(
                    f'{self.ann_file}: no box left to train on: all '
                    f'{ignored} loaded boxes are flagged ignored (iscrowd '
                    'or ignore_flag set by the dataset or its '
                    f'parse_data_info); {summary}',
                    cause='label_mask')
            raise DataCheckError(
                f'{self.ann_file}: no box left to train on; {summary}')
        level = logging.WARNING if report['invalid'] else logging.INFO
        print_log(
            f'{type(self).__name__} {self.ann_file}: {summary}',
            logger='current',
            level=level)
        return kept

    def _summary(self) -> str:
        report = self.drop_report
        total = report['num_annotations']
        text = (f"{report['num_images']} images and {report['num_boxes']} "
                f'boxes to use, from {total} annotations')
        if report['invalid']:
            text += ('; invalid, dropped: ' +
                     self._describe(report['invalid'], total))
        if report['dropped']:
            text += f"; left out by design: {_counts(report['dropped'])}"
        if report['images_dropped']:
            text += ('; images filtered out: ' +
                     _counts(report['images_dropped']))
        if report.get('hint') and not report['invalid']:
            text += f"; {report['hint']}"
        return text


# Configs that name mmdet's 'CocoDataset' under default_scope
# 'engine_plugins' get the checks; scope 'mmdet' (or 'mmdet.CocoDataset')
# still builds mmdet's class.
DATASETS.register_module(name='CocoDataset', module=CheckedCocoDataset)
