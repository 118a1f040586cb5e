"""Checks of a parsed COCO-format annotation file, before pycocotools and
mmdet read it.

Structural problems (a missing top-level key, an image without a size,
duplicate ids, configured classes the file does not have) raise
:class:`DataCheckError` at once: no policy can train on them. Per
annotation, :func:`check_annotations` gives each annotation a reason code in
one vectorised pass, so a file of COCO train2017's size (860k annotations)
costs a few list comprehensions and numpy comparisons.
"""
import json
from collections import Counter
from typing import Any, Dict, Hashable, List, Sequence, Tuple

import numpy as np

MAX_EXAMPLES = 3

# Problems of the file, tested in this order (the first that applies is
# the annotation's reason): (key, field, description).
INVALID = (
    ('image_id', 'image_id', 'image_id not in images'),
    ('category_id', 'category_id', 'category_id not in categories'),
    ('bbox_format', 'bbox', 'bbox not 4 finite numbers'),
    ('bbox_size', 'bbox', 'bbox width or height <= 0'),
    ('bbox_outside', 'bbox', 'bbox outside its image (beyond bbox_tolerance)'),
    ('area', 'area', 'area missing or <= 0'),
)
# Valid annotations that mmdet's loader leaves out of training by design.
DROPPED = (
    ('ignore', 'ignore', 'ignore flag set'),
    ('tiny', 'bbox', 'width or height under 1 px'),
    ('unselected_class', 'category_id',
     'category not among the configured classes'),
    ('iscrowd', 'iscrowd', 'iscrowd (kept as an ignored region)'),
)
REASONS = INVALID + DROPPED
DESCRIPTIONS = {key: text for key, _, text in REASONS}


class DataCheckError(ValueError):
    """An annotation file, or the images it names, cannot be used as
    configured.

    Args:
        message: The file, the field and what is wrong.
        cause: The sanity engine's cause code, so the event log and the
            post-mortem rank it with the run's other findings.
    """

    def __init__(self, message: str, cause: str = 'annotation_format'):
        super().__init__(message)
        self.cause = cause


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value) if value is not None else 'missing'
    return text if len(text) <= limit else text[:limit - 3] + '...'


def first_few(items: List[str]) -> str:
    more = len(items) - MAX_EXAMPLES
    shown = '; '.join(items[:MAX_EXAMPLES])
    return shown + (f'; and {more} more' if more > 0 else '')


def _is_id(value: Any) -> bool:
    # JSON's unhashable values are lists and objects.
    return value is not None and not isinstance(value, (list, dict))


def check_structure(coco: Any, ann_file: str, test_mode: bool) -> None:
    """Raise :class:`DataCheckError` unless ``coco`` has the lists
    pycocotools indexes, with ids and image sizes.

    Image-info files (COCO test-dev) have no ``annotations``: allowed in
    ``test_mode`` only.
    """
    if not isinstance(coco, dict):
        raise DataCheckError(
            f'{ann_file}: the top level is a {type(coco).__name__}, not an '
            'object with images, annotations and categories')
    required = ['images', 'categories']
    if not test_mode:
        required.insert(1, 'annotations')
    for key in required:
        if key not in coco:
            raise DataCheckError(
                f"{ann_file}: no '{key}' key at the top level (keys: "
                f'{sorted(coco)[:8]})')
    for key in ('images', 'annotations', 'categories'):
        if key in coco and not isinstance(coco[key], list):
            raise DataCheckError(f"{ann_file}: '{key}' is a "
                                 f'{type(coco[key]).__name__}, not a list')
    problems = []
    for i, img in enumerate(coco['images']):
        if not isinstance(img, dict):
            problems.append(f'images[{i}] is not an object')
            continue
        for field in ('id', 'file_name', 'width', 'height'):
            value = img.get(field)
            if field in ('width', 'height'):
                ok = type(value) in (int, float) and value > 0
            elif field == 'file_name':
                ok = isinstance(value, str) and value != ''
            else:
                ok = _is_id(value)
            if not ok:
                problems.append(f'images[{i}] (id {_short(img.get("id"))})'
                                f' {field}={_short(value)}')
    for key in ('categories', 'annotations'):
        entries = coco.get(key, [])
        bad = [
            i for i, e in enumerate(entries)
            if not isinstance(e, dict) or not _is_id(e.get('id')) or (
                key == 'categories' and not isinstance(e.get('name'), str))
        ]
        what = 'an id and a name' if key == 'categories' else 'an id'
        problems += [
            f'{key}[{i}] has no usable {what}: {_short(entries[i])}'
            for i in bad
        ]
    if problems:
        raise DataCheckError(f'{ann_file}: {len(problems)} malformed '
                             f'entries: {first_few(problems)}')
    for key in ('images', 'categories', 'annotations'):
        ids = [entry['id'] for entry in coco.get(key, ())]
        if len(set(ids)) != len(ids):
            # pycocotools keys its index by id: a duplicate replaces the
            # first entry without a word.
            dups = [i for i, c in Counter(ids).items() if c > 1]
            raise DataCheckError(
                f'{ann_file}: {len(dups)} duplicate ids in {key}: '
                f'{first_few([_short(i) for i in dups])}')


def check_classes(coco: Dict, ann_file: str, classes: Sequence[str]) -> None:
    """The configured class names must each name one category, in the
    file's order.

    mmdet numbers the labels in the order the matching categories appear in
    the file: a class missing, duplicated or out of order shifts every label
    against ``metainfo['classes']`` (the names the model and the
    per-class metrics use).
    """
    names = [c['name'] for c in coco['categories']]
    found = [name for name in names if name in set(classes)]
    missing = [c for c in classes if c not in found]
    if missing:
        raise DataCheckError(
            f'{ann_file}: configured classes {missing} are not among the '
            f'categories of the file ({_short(names, 200)}); set '
            'metainfo=dict(classes=...) to names from the file')
    if found != list(classes):
        raise DataCheckError(
            f'{ann_file}: the categories give the configured classes as '
            f'{found}, not {list(classes)}: mmdet numbers labels in the '
            "file's order, so metainfo classes must list them in that order "
            'once each')


def _lookup(index: Dict, keys: List[Any]) -> np.ndarray:
    """``index[key]`` per key, -1 where absent (or unhashable)."""
    try:
        return np.array([index.get(k, -1) for k in keys], np.int64)
    except TypeError:  # a list or dict where an id belongs
        return np.array([
            index.get(k, -1) if isinstance(k, Hashable) else -1 for k in keys
        ], np.int64)


def _member(known: Dict, keys: List[Any]) -> np.ndarray:
    """Whether each key is in ``known``; False for unhashable keys."""
    try:
        return np.array([k in known for k in keys], bool)
    except TypeError:  # a list or dict where an id belongs
        return np.array([isinstance(k, Hashable) and k in known for k in keys],
                        bool)


def _numbers(values: List[Any]) -> np.ndarray:
    """float64 values; NaN for anything but an int or a float (bools and
    numeric strings included: mmdet's arithmetic would fail on them)."""
    return np.array([v if type(v) in (int, float) else np.nan for v in values],
                    np.float64)


def _boxes(values: List[Any]) -> np.ndarray:
    """``(N, 4)`` float64 boxes; rows of NaN where a value is not a list of
    4 numbers."""
    try:
        arr = np.array(values)
        if arr.shape == (len(values), 4) and arr.dtype.kind in 'iuf':
            return arr.astype(np.float64)
    except ValueError:  # ragged
        pass
    nan = [np.nan] * 4
    return np.array([
        b if isinstance(b, list) and len(b) == 4
        and all(type(v) in (int, float) for v in b) else nan for b in values
    ], np.float64).reshape(-1, 4)


def check_annotations(coco: Dict, classes: Sequence[str],
                      tolerance: float) -> Tuple[np.ndarray, Dict, str]:
    """Give each annotation a reason code: an index into :data:`REASONS`,
    or -1 for a box that trains.

    Args:
        coco: The parsed file, past :func:`check_structure`.
        classes: The configured class names.
        tolerance: Pixels a box may extend past its image.

    Returns:
        ``(codes, examples, hint)``: examples are the first few offenders per
        reason key (annotation id, field and value); hint names another box
        convention under which the boxes fit their images, or is ''.
    """
    anns = coco.get('annotations', [])
    images = coco['images']
    sizes = np.array([[im['width'], im['height']] for im in images],
                     np.float64).reshape(-1, 2)
    image_rows = {im['id']: k for k, im in enumerate(images)}
    rows = _lookup(image_rows, [a.get('image_id') for a in anns])
    known = {c['id']: c['name'] for c in coco['categories']}
    selected = {i for i, name in known.items() if name in set(classes)}
    cat_ids = [a.get('category_id') for a in anns]
    boxes = _boxes([a.get('bbox') for a in anns])
    areas = _numbers([a.get('area') for a in anns])
    wh = np.full((len(anns), 2), np.nan)
    if len(sizes):
        wh = np.where(rows[:, None] >= 0, sizes[rows.clip(0)], np.nan)
    x, y, w, h = boxes.T
    with np.errstate(invalid='ignore'):
        masks = [
            rows < 0,
            ~_member(known, cat_ids),
            ~np.isfinite(boxes).all(1),
            (w <= 0) | (h <= 0),
            (x < -tolerance) | (y < -tolerance) |
            (x + w > wh[:, 0] + tolerance) | (y + h > wh[:, 1] + tolerance),
            ~(areas > 0),
            np.array([bool(a.get('ignore', False)) for a in anns], bool),
            (w < 1) | (h < 1),
            ~_member(selected, cat_ids),
            np.array([bool(a.get('iscrowd', False)) for a in anns], bool),
        ]
    codes = np.full(len(anns), -1, np.int8)
    for code in range(len(masks) - 1, -1, -1):  # the first reason wins
        codes[masks[code]] = code
    examples = {}
    for code, (key, field, _) in enumerate(REASONS):
        first = np.flatnonzero(codes == code)[:MAX_EXAMPLES]
        if len(first):
            examples[key] = [_example(anns[i], field, wh[i]) for i in first]
    return codes, examples, _box_hint(codes, boxes, wh)


def _example(ann: Dict, field: str, wh: np.ndarray) -> str:
    text = f"annotation id {_short(ann['id'])}: {field}="
    text += _short(ann.get(field))
    if field == 'bbox' and np.isfinite(wh).all():
        text += f' in a {wh[0]:g}x{wh[1]:g} image'
    return text


def _box_hint(codes: np.ndarray, boxes: np.ndarray, wh: np.ndarray) -> str:
    """When many boxes are empty, tiny or outside their image, the
    convention under which they fit (xyxy, cxcywh, normalized), if any."""
    keys = [key for key, _, _ in REASONS]
    off = np.isin(
        codes, [keys.index(k) for k in ('bbox_size', 'bbox_outside', 'tiny')])
    if off.sum() < max(1, 0.01 * len(codes)):
        return ''
    # Deferred: the sanity engine's package is heavy and not needed to load
    # a clean file.
    from engine_plugins.engine.sanity.annotation_audit import best_reading
    usable = np.isfinite(boxes).all(1) & np.isfinite(wh).all(1)
    best, fraction, fractions = best_reading(boxes[usable], wh[usable])
    if best == 'xywh' or fraction < 0.9 or fraction <= fractions['xywh']:
        return ''
    return (f'read as {best}, {fraction:.1%} of the boxes fit their images: '
            f'the file stores {best} boxes where COCO expects pixel '
            '[x, y, w, h]')
