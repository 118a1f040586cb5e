"""A small COCO-format detection dataset of rendered shapes, written on
demand, so detection configs can train on a fresh machine with no download.
"""
import json
import os
import os.path as osp
import shutil
import tempfile
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np

from engine_plugins.registry import DATASETS
from .checked_coco import CheckedCocoDataset

SHAPE_CLASSES = ('circle', 'square', 'triangle')
META_FILE = 'demo_shapes.json'
DEFAULTS = dict(
    num_train=256,
    num_val=64,
    min_size=(192, 192),
    max_size=(256, 320),
    max_objects=5,
    empty_ratio=0.1,
    max_iou=0.3,
    seed=0)


def _draw(img: np.ndarray, cls: int, box: Sequence[int],
          color: Tuple[int, ...]) -> None:
    x1, y1, x2, y2 = box
    if SHAPE_CLASSES[cls] == 'circle':
        cv2.ellipse(img, ((x1 + x2) // 2, (y1 + y2) // 2),
                    ((x2 - x1) // 2, (y2 - y1) // 2), 0, 0, 360, color, -1)
    elif SHAPE_CLASSES[cls] == 'square':
        cv2.rectangle(img, (x1, y1), (x2 - 1, y2 - 1), color, -1)
    else:
        pts = np.array([[(x1 + x2) // 2, y1], [x1, y2 - 1], [x2 - 1, y2 - 1]])
        cv2.fillPoly(img, [pts.astype(np.int32)], color)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
    return inter / (area - inter)


def render_image(rng: np.random.Generator, height: int, width: int,
                 num_objects: int, max_iou: float
                 ) -> Tuple[np.ndarray, List[Tuple[int, List[int]]]]:
    """One image: a noisy background and up to ``num_objects`` shapes whose
    boxes overlap by at most ``max_iou``. Returns the BGR image and
    ``(class, [x1, y1, x2, y2])`` per drawn shape (pixel corners)."""
    background = rng.integers(0, 256, 3)
    img = np.empty((height, width, 3), np.uint8)
    img[:] = background
    noise = rng.normal(0, 12, img.shape)
    img = np.clip(img + noise, 0, 255).astype(np.uint8)
    objects: List[Tuple[int, List[int]]] = []
    short = min(height, width)
    for _ in range(num_objects * 4):  # rejection sampling of placements
        if len(objects) == num_objects:
            break
        cls = int(rng.integers(len(SHAPE_CLASSES)))
        size = int(rng.integers(max(12, short // 12), short // 2))
        aspect = 1.0 if SHAPE_CLASSES[cls] == 'square' else rng.uniform(
            0.7, 1.4)
        w, h = size, max(8, int(round(size * aspect)))
        h = min(h, height - 1)
        x1 = int(rng.integers(0, width - w))
        y1 = int(rng.integers(0, height - h))
        box = [x1, y1, x1 + w, y1 + h]
        if any(_iou(np.array(box), np.array(b)) > max_iou
               for _, b in objects):
            continue
        # Keep the shape visible against the background.
        color = (background + rng.integers(80, 176, 3)) % 256
        _draw(img, cls, box, tuple(int(c) for c in color))
        objects.append((cls, box))
    return img, objects


def _write_split(root: str, split: str, num_images: int,
                 rng: np.random.Generator, cfg: Dict) -> None:
    os.makedirs(osp.join(root, split))
    images, annotations = [], []
    for img_id in range(1, num_images + 1):
        height = int(rng.integers(cfg['min_size'][0], cfg['max_size'][0] + 1))
        width = int(rng.integers(cfg['min_size'][1], cfg['max_size'][1] + 1))
        empty = rng.random() < cfg['empty_ratio']
        count = 0 if empty else int(rng.integers(1, cfg['max_objects'] + 1))
        img, objects = render_image(rng, height, width, count, cfg['max_iou'])
        name = f'{img_id:06d}.png'
        cv2.imwrite(osp.join(root, split, name), img)
        images.append(
            dict(id=img_id, file_name=name, height=height, width=width))
        for cls, (x1, y1, x2, y2) in objects:
            annotations.append(
                dict(
                    id=len(annotations) + 1,
                    image_id=img_id,
                    category_id=cls + 1,
                    bbox=[x1, y1, x2 - x1, y2 - y1],
                    area=(x2 - x1) * (y2 - y1),
                    iscrowd=0))
    categories = [
        dict(id=i + 1, name=name) for i, name in enumerate(SHAPE_CLASSES)
    ]
    with open(osp.join(root, 'annotations', f'{split}.json'), 'w') as f:
        json.dump(
            dict(images=images, annotations=annotations,
                 categories=categories), f)


def write_demo_shapes(root: str, **kwargs) -> Dict:
    """Write the dataset to ``root`` unless it is already there.

    Layout: ``root/{train,val}/*.png`` and
    ``root/annotations/{train,val}.json`` (COCO format, category ids 1..3
    for :data:`SHAPE_CLASSES`), plus ``root/demo_shapes.json`` with the
    settings. The same settings always give the same files. The data is
    written to a temporary folder and renamed into place, so an interrupted
    run leaves nothing half-written.

    Args:
        root: Output folder.
        **kwargs: Overrides of :data:`DEFAULTS`: ``num_train``, ``num_val``,
            ``min_size`` / ``max_size`` (h, w), ``max_objects``,
            ``empty_ratio``, ``max_iou``, ``seed``.

    Returns:
        The settings used.

    Raises:
        ValueError: an unknown setting, or ``root`` holds other data or
            demo data written with other settings.
    """
    unknown = set(kwargs) - set(DEFAULTS)
    if unknown:
        raise ValueError(f'write_demo_shapes: unknown settings '
                         f'{sorted(unknown)}; known: {sorted(DEFAULTS)}')
    cfg = {**DEFAULTS, **kwargs}
    cfg = json.loads(json.dumps(cfg))  # tuples → lists, as stored
    meta_path = osp.join(root, META_FILE)
    if osp.exists(meta_path):
        with open(meta_path) as f:
            stored = json.load(f)
        if stored != cfg:
            raise ValueError(
                f'{root} holds demo shapes written with other settings '
                f'({stored}); delete it or choose another data_root')
        return cfg
    if osp.exists(root) and os.listdir(root):
        raise ValueError(f'{root} exists and is not demo shapes data (no '
                         f'{META_FILE}); choose another data_root')
    parent = osp.dirname(osp.abspath(root))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='.demo_shapes-', dir=parent)
    try:
        os.makedirs(osp.join(tmp, 'annotations'))
        rng = np.random.default_rng(cfg['seed'])
        _write_split(tmp, 'train', cfg['num_train'], rng, cfg)
        _write_split(tmp, 'val', cfg['num_val'], rng, cfg)
        with open(osp.join(tmp, META_FILE), 'w') as f:
            json.dump(cfg, f)
        if osp.isdir(root):
            os.rmdir(root)  # empty, checked above
        os.rename(tmp, root)
    except OSError:
        # Another process (e.g. a second rank) finished first; its files
        # are identical.
        shutil.rmtree(tmp, ignore_errors=True)
        if not osp.exists(meta_path):
            raise
    return cfg


@DATASETS.register_module()
class DemoShapesDataset(CheckedCocoDataset):
    """:class:`CheckedCocoDataset` over :func:`write_demo_shapes` data, which
    is written to ``data_root`` on first use.

    Args:
        generate: Settings for :func:`write_demo_shapes` (``num_train``,
            ``seed``, ...). Every dataset and metric that shares a
            ``data_root`` must use the same settings.
        **kwargs: ``CheckedCocoDataset`` arguments (``data_root``,
            ``ann_file``, ``data_prefix``, ``pipeline``, ``data_check``,
            ...).

    Example:
        >>> dataset = DATASETS.build(dict(
        ...     type='DemoShapesDataset', data_root='data/demo_shapes/',
        ...     ann_file='annotations/train.json',
        ...     data_prefix=dict(img='train/'), pipeline=[]))
    """

    METAINFO = dict(
        classes=SHAPE_CLASSES,
        palette=[(220, 20, 60), (0, 130, 255), (20, 200, 60)])

    def __init__(self, *args, generate: Dict = None, **kwargs) -> None:
        if not kwargs.get('data_root'):
            raise ValueError('DemoShapesDataset needs a data_root to write '
                             'the demo data to')
        write_demo_shapes(kwargs['data_root'], **(generate or {}))
        super().__init__(*args, **kwargs)
