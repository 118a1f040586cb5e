"""Audit of detection annotations as loaded, before any augmentation.

Mosaic and affine transforms clip boxes to the image, so an inverted or
misplaced box can come out of the pipeline as a valid, wrong one: the
per-batch checks cannot see a format confusion that augmentation hid. The
audit reads what the dataset parsed (mmdet's ``data_list``: pixel xyxy
boxes and labels, with image sizes) and reports the fraction that is
invalid. mmdet's ``CocoDataset`` silently drops boxes narrower than a
pixel or outside the image, so for COCO files it also compares the boxes
kept with the annotations in the file, and when many were dropped it reads
the file again to tell which convention its ``bbox`` values follow.

Formats tried on ``[a, b, c, d]``: COCO ``xywh`` (correct), ``xyxy``,
``cxcywh``, each in pixels or normalized to [0, 1].
"""
import json
from collections import OrderedDict
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np

from .errors import TargetFormatError
from .events import SanityEvents

_TOL = 1.0  # pixels
_FORMATS = ('xywh', 'xyxy', 'cxcywh')


def _base_datasets(dataset: Any) -> Iterator[Any]:
    """The leaf datasets behind mmengine/mmdet wrappers."""
    children = getattr(dataset, 'datasets', None)
    if children is not None:
        for child in children:
            yield from _base_datasets(child)
        return
    inner = getattr(dataset, 'dataset', None)
    if inner is not None:
        yield from _base_datasets(inner)
        return
    yield dataset


def corners(values: np.ndarray, fmt: str) -> np.ndarray:
    """``(N, 4)`` boxes read as ``fmt`` -> x1, y1, x2, y2."""
    a, b, c, d = values.T
    if fmt == 'xywh':
        return np.stack([a, b, a + c, b + d], 1)
    if fmt == 'cxcywh':
        return np.stack([a - c / 2, b - d / 2, a + c / 2, b + d / 2], 1)
    return values


def valid_mask(xyxy: np.ndarray,
               wh: np.ndarray,
               tol: float = _TOL,
               min_size: float = 0.0) -> np.ndarray:
    """Boxes inside their image (``wh`` per box), larger than
    ``min_size`` pixels each way."""
    x1, y1, x2, y2 = xyxy.T
    return ((x2 - x1 > min_size) & (y2 - y1 > min_size) & (x1 >= -tol) &
            (y1 >= -tol) & (x2 <= wh[:, 0] + tol) & (y2 <= wh[:, 1] + tol))


def best_reading(values: np.ndarray,
                 wh: np.ndarray) -> Tuple[str, float, Dict[str, float]]:
    """The format (and scale) under which most boxes are valid: inside
    the image and at least a pixel wide and high, as mmdet requires.

    Returns ``(name, fraction, all_fractions)``; names read like
    ``'xyxy'`` or ``'normalized xywh'``.
    """
    fractions: Dict[str, float] = OrderedDict()
    for fmt in _FORMATS:
        fractions[fmt] = float(
            valid_mask(corners(values, fmt), wh, min_size=1.0).mean())
        if values.size and float(np.abs(values).max()) <= 1.0 + 1e-6:
            fractions[f'normalized {fmt}'] = float(
                valid_mask(
                    corners(values, fmt) * np.tile(wh, 2), wh,
                    min_size=1.0).mean())
    name = max(fractions, key=fractions.get)
    return name, fractions[name], fractions


class _Collected:
    """Boxes, labels and image sizes of a dataset, as parsed."""

    def __init__(self) -> None:
        self.boxes: List[List[float]] = []
        self.labels: List[int] = []
        self.wh: List[Tuple[float, float]] = []
        self.where: List[str] = []
        self.ignored = 0
        self.images: List[Tuple[str, Tuple[float, float]]] = []
        self.seen = 0
        self.with_boxes = 0  # images with at least one box not ignored

    def arrays(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        return (np.asarray(self.boxes, np.float64).reshape(-1, 4),
                np.asarray(self.labels,
                           np.int64), np.asarray(self.wh,
                                                 np.float64).reshape(-1, 2))


def _collect(dataset: Any, max_images: int) -> Optional[_Collected]:
    if not hasattr(dataset, 'get_data_info'):
        return None
    if hasattr(dataset, 'full_init'):
        dataset.full_init()
    n = len(dataset)
    if n == 0:
        return None
    step = max(1, n // max_images) if max_images else 1
    out = _Collected()
    for idx in range(0, n, step):
        info = dataset.get_data_info(idx)
        instances = info.get('instances')
        if instances is None or 'width' not in info:
            return None
        if info.get('img_path'):
            out.images.append(
                (info['img_path'], (info['width'], info['height'])))
        out.seen += 1
        out.with_boxes += any(not i.get('ignore_flag', 0) for i in instances)
        for j, inst in enumerate(instances):
            if inst.get('ignore_flag', 0):
                out.ignored += 1
                continue
            out.boxes.append(list(inst['bbox']))
            out.labels.append(int(inst['bbox_label']))
            out.wh.append((info['width'], info['height']))
            out.where.append(f"{info.get('img_path', idx)}, instance {j}")
    return out


def _raw_coco(ann_file: str) -> Tuple[np.ndarray, np.ndarray, List[str]]:
    """``bbox`` values, image sizes and names of every annotation."""
    with open(ann_file, encoding='utf-8') as f:
        coco = json.load(f)
    images = {im['id']: im for im in coco.get('images', [])}
    values, wh, where = [], [], []
    for ann in coco.get('annotations', []):
        img = images.get(ann.get('image_id'))
        if img is None or len(ann.get('bbox', [])) != 4:
            continue
        values.append(ann['bbox'])
        wh.append((img['width'], img['height']))
        where.append(f"annotation id {ann.get('id')} of "
                     f"{img.get('file_name')}")
    return (np.asarray(values, np.float64).reshape(-1, 4),
            np.asarray(wh, np.float64).reshape(-1, 2), where)


def _loader(dataset: Any) -> Optional[Any]:
    """The pipeline's image loader (an mmcv ``LoadImageFromFile``)."""
    from mmcv.transforms import LoadImageFromFile
    for transform in getattr(getattr(dataset, 'pipeline', None), 'transforms',
                             ()):
        if isinstance(transform, LoadImageFromFile):
            return transform
    return None


def _loaded_size(loader: Any, path: str) -> Optional[Tuple[int, int]]:
    """``(w, h)`` of an image as the pipeline's loader gives it (which may
    differ from the file), or from the file's header without a loader."""
    try:
        if loader is not None:
            shape = loader(dict(img_path=path))['ori_shape']
            return int(shape[1]), int(shape[0])
        from PIL import Image
        with Image.open(path) as img:
            return img.size
    except Exception:  # a missing file is reported when it is loaded
        return None


def _image_sizes(dataset: Any,
                 images: List[Tuple[str, Tuple[float, float]]],
                 samples: int = 8) -> Optional[str]:
    """A sentence when the images, as the pipeline loads them, are not
    the size the annotations give (images re-saved or resized after
    annotation: every box is off by the scale); loads a few evenly spaced
    images."""
    if not images:
        return None
    loader = _loader(dataset)
    step = max(1, len(images) // samples)
    picked = images[::step][:samples]
    off = []
    for path, (w, h) in picked:
        size = _loaded_size(loader, path)
        if size is not None and size != (int(w), int(h)):
            off.append((path, (int(w), int(h)), size))
    if len(off) * 2 < len(picked):
        return None
    path, (w, h), (fw, fh) = off[0]
    return (f'{len(off)} of {len(picked)} sampled images are not the size '
            f'the annotations give: {path} loads as {fw}x{fh} but is '
            f'annotated as {w}x{h} (scale {fw / w:.3g}): the boxes refer to '
            'another version of the images (re-saved or resized after '
            'annotation)')


def _coco_counts(dataset: Any, kept: int) -> Optional[Tuple[int, int]]:
    """``(annotations in the file for the dataset's classes, kept)`` for
    mmdet's ``CocoDataset`` (``cat_img_map`` holds one image id per
    annotation)."""
    cat_map = getattr(dataset, 'cat_img_map', None)
    cat_ids = getattr(dataset, 'cat_ids', None)
    if not cat_map or cat_ids is None:
        return None
    total = sum(len(cat_map.get(c, ())) for c in cat_ids)
    return total, kept


def _labels_finding(labels: np.ndarray,
                    num_classes: int) -> Optional[Tuple[float, str]]:
    bad = (labels < 0) | (labels >= num_classes)
    if not bad.any():
        return None
    present = set(np.unique(labels).tolist())
    if min(present) >= 1 and max(present) == num_classes:
        why = ('the labels run 1..num_classes: they are 1-based (shift '
               'them by -1, or map category ids with cat2label)')
    elif (labels < 0).any():
        why = ('negative labels mark boxes to ignore; the losses have no '
               'ignore class: drop them or set ignore_flag')
    else:
        why = (f'labels up to {int(labels.max())} for {num_classes} '
               'classes: the label map and the model\'s num_classes differ')
    return float(bad.mean()), why


def audit_dataset(dataset: Any,
                  num_classes: int,
                  events: SanityEvents,
                  max_invalid: float = 0.01,
                  max_images: Optional[int] = 50000) -> Optional[float]:
    """Audit each detection dataset behind ``dataset``.

    Stops the run (:class:`TargetFormatError`) when at least
    ``max_invalid`` of the boxes or labels are invalid, naming the file,
    the first bad annotation and the likely convention; warns below that.

    Args:
        dataset: The training dataset (wrappers are looked through).
        num_classes: Labels must lie in ``[0, num_classes)``.
        events: Where findings go.
        max_invalid: Fraction of invalid boxes that stops the run.
        max_images: Audit at most this many images (evenly spaced).

    Returns:
        The fraction of audited images with at least one box that is not
        ignored, as annotated (None if no dataset could be read).
    """
    images = with_boxes = 0
    for base in _base_datasets(dataset):
        collected = _collect(base, max_images)
        if collected is None:
            continue
        name = getattr(base, 'ann_file', None) or type(base).__name__
        _audit_one(base, name, collected, num_classes, events, max_invalid)
        images += collected.seen
        with_boxes += collected.with_boxes
    return with_boxes / images if images else None


def _audit_one(base: Any, name: str, collected: _Collected, num_classes: int,
               events: SanityEvents, max_invalid: float) -> None:
    boxes, labels, wh = collected.arrays()
    where = f'annotation audit of {name}'
    found = _labels_finding(labels, num_classes) if len(labels) else None
    if found is not None:
        fraction, why = found
        first = int(np.nonzero((labels < 0) | (labels >= num_classes))[0][0])
        message = (f'{where}: {fraction:.1%} of {len(labels)} labels lie '
                   f'outside [0, {num_classes}) (first: '
                   f'{collected.where[first]}, label {labels[first]}): {why}')
        if fraction >= max_invalid:
            events.error(
                TargetFormatError,
                message,
                cause='label_range',
                check='audit',
                fraction=fraction)
        events.warning('label_range', message, check='audit')
    sizes = _image_sizes(base, collected.images)
    if sizes:
        events.error(
            TargetFormatError,
            f'{where}: {sizes}',
            cause='annotation_format',
            check='audit')
    total_boxes = len(boxes) + collected.ignored
    if total_boxes and collected.ignored / total_boxes >= 0.5:
        events.error(
            TargetFormatError,
            f'{where}: {collected.ignored} of the {total_boxes} boxes are '
            'marked as crowd / ignored (iscrowd, ignore_flag): mmdet trains '
            'them as ignored regions, not objects, so the model learns '
            'that almost nothing is there. Check how the annotations set '
            'iscrowd',
            cause='label_mask',
            check='audit')
    counts = _coco_counts(base, total_boxes)
    if counts is not None and counts[0] > 0:
        total, kept = counts
        dropped = 1 - kept / total
        if dropped >= max_invalid:
            _explain_dropped(base.ann_file, where, dropped, total, events)
    if not len(boxes):
        return
    # As mmdet's COCO loader: under a pixel wide or high is empty.
    valid = valid_mask(boxes, wh, min_size=1.0)
    fraction = 1 - float(valid.mean())
    if fraction == 0:
        return
    first = int(np.nonzero(~valid)[0][0])
    x1, y1, x2, y2 = boxes[first]
    reading = ''
    if counts is not None:
        # mmdet built x2 = x + w from the file: read the stored values
        # back as [x, y, w, h] before trying the other conventions.
        declared, expected = 'xywh', 'COCO expects pixel [x, y, w, h]'
        stored = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1)
    else:
        declared, expected = 'xyxy', 'the dataset must give pixel xyxy'
        stored = boxes
    best, best_frac, _ = best_reading(stored, wh)
    if best != declared and best_frac >= 1 - max_invalid:
        reading = (f'; read as {best}, {best_frac:.1%} are valid: the '
                   f'annotations hold {best} boxes where {expected}')
    message = (f'{where}: {fraction:.1%} of {len(boxes)} boxes are invalid '
               f'as loaded (first: {collected.where[first]}, xyxy '
               f'[{x1:.4g}, {y1:.4g}, {x2:.4g}, {y2:.4g}] in a '
               f'{wh[first][0]:.0f}x{wh[first][1]:.0f} image: inverted, '
               f'under a pixel, or outside the image){reading}')
    if fraction >= max_invalid:
        events.error(
            TargetFormatError,
            message,
            cause='annotation_format',
            check='audit',
            fraction=fraction)
    events.warning(
        'annotation_format', message, check='audit', fraction=fraction)


def _explain_dropped(ann_file: str, where: str, dropped: float, total: int,
                     events: SanityEvents) -> None:
    """mmdet dropped many annotations: read the file to say why."""
    values, wh, names = _raw_coco(ann_file)
    detail = ''
    if len(values):
        ok = valid_mask(corners(values, 'xywh'), wh, min_size=1.0)
        best, best_frac, _ = best_reading(values, wh)
        first = int(np.nonzero(~ok)[0][0]) if (~ok).any() else None
        if first is not None:
            detail += (f' (first: {names[first]}, bbox '
                       f'{[round(v, 4) for v in values[first].tolist()]} in '
                       f'a {wh[first][0]:.0f}x{wh[first][1]:.0f} image)')
        if best != 'xywh':
            detail += (f'; read as {best}, {best_frac:.1%} of the boxes are '
                       f'valid: the file stores {best} boxes where COCO '
                       'expects pixel [x, y, w, h]')
    events.error(
        TargetFormatError,
        f'{where}: mmdet dropped {dropped:.1%} of the {total} annotations '
        'while loading (boxes under 1 pixel wide or high, or outside their '
        f'image){detail}',
        cause='annotation_format',
        check='audit',
        fraction=dropped)
