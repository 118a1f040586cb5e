"""Ultralytics YOLOv8 detection weights as PSALM YOLO weights.

PSALM YOLO's backbone (:class:`YOLOv8CSPDarknet`), neck
(:class:`YOLOv8PAFPN`) and the box branch of :class:`PSALMDualHead` compute
what YOLOv8's layers compute, so their weights carry over one to one. The
class side does not: YOLOv8's ``Detect.cv3`` predicts class logits
directly, PSALM compares embeddings with class prototypes
(:class:`PSALMFusion` and the head's prototype branch). The conversion
therefore *converts* the backbone, neck and box branch, leaves PSALM's
class side *new* (at its initial values when loaded with
``load_strict=False``) and *drops* YOLOv8's class branch and its fixed DFL
bins.

Layer indices are those of ultralytics' ``yolov8.yaml`` (P3-P5, ``Detect``
at layer 22) and ``yolov8-p2.yaml`` (P2-P5, ``Detect`` at 28); ``L`` is
the number of detection levels:

=====================================  ====================================
ultralytics ``model.*``                PSALM YOLO
=====================================  ====================================
``0`` Conv                             ``backbone.stem``
``1, 3, 5, 7`` Conv (stride 2)         ``backbone.stages.{0-3}.0``
``2, 4, 6, 8`` C2f                     ``backbone.stages.{0-3}.1``
``9`` SPPF                             ``backbone.stages.3.2``
``12 + 3j`` C2f, j < L-1 (top-down,    ``neck.top_down.{L-2-j}``
coarsest first)
``10 + 3(L-1) + 3j`` Conv (stride 2)   ``neck.downsample.{j}``
``12 + 3(L-1) + 3j`` C2f (bottom-up)   ``neck.bottom_up.{j}``
``10 + 6(L-1)`` Detect ``.cv2.{i}``    ``bbox_head.box_branches.{i}``
``Detect.cv3.*`` (class branch),       dropped
``Detect.dfl.conv.weight`` (bins
``0..reg_max-1``, recomputed)
(nothing)                              new: ``fusion.*``,
                                       ``bbox_head.proto_branches.*``,
                                       ``bbox_head.logit_{scale,bias}``
=====================================  ====================================

Inside the modules: ``Conv.{conv,bn}`` keep their names; C2f ``cv1`` →
``main_conv``, ``cv2`` → ``final_conv``, ``m.{k}.cv1/cv2`` →
``blocks.{k}.conv1/conv2``; SPPF ``cv1/cv2`` → ``conv1/conv2``.

The size (YOLOv8's depth, width and ``max_channels``) is read from the
weights' shapes; :meth:`YOLOv8Size.cfg_options` gives the config values
that build the matching model. Every ultralytics scale (n, s, m, l, x) and
both level layouts are representable; ``yolov8-p6`` (a fifth, stride-64
backbone stage) is not.

Example:
    >>> state, info = read_ultralytics_weights('yolov8n_state.pth')
    >>> size = infer_yolov8_size(state)
    >>> size.cfg_options()['model.backbone.widen_factor']
    0.25
    >>> model = MODELS.build(size.model_cfg())  # or from a config
    >>> result = convert_ultralytics_state_dict(state, model.state_dict())
    >>> print(result.summary())
    >>> torch.save(dict(state_dict=result.state_dict,
    ...                 meta=result.meta(source='yolov8n.pt')), 'out.pth')
"""
import importlib.metadata
import inspect
import pickle
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn as nn

# WeightConversionError stays importable from this module.
from ..weight_conversion import KeyConversionResult, WeightConversionError
from ..weight_conversion import tensor_shape as _shape
from .psalm_dual_head import PSALMDualHead
from .yolov8_csp_darknet import STAGES, YOLOv8CSPDarknet, scaled_channels

#: ultralytics' model scales, ``[depth, width, max_channels]`` (the
#: ``scales`` of ``yolov8.yaml`` and ``yolov8-p2.yaml``).
ULTRALYTICS_SCALES = {
    'n': (0.33, 0.25, 1024),
    's': (0.33, 0.50, 1024),
    'm': (0.67, 0.75, 768),
    'l': (1.00, 1.00, 512),
    'x': (1.00, 1.25, 512),
}
#: Our keys with no ultralytics counterpart: PSALM's class side.
NEW_PREFIXES = ('fusion.', 'bbox_head.proto_branches.',
                'bbox_head.logit_scale', 'bbox_head.logit_bias')
#: Blocks of each neck C2f at depth 1.0 (``[-1, 3, C2f, ...]``).
NECK_BLOCKS = 3
#: Stem channels at width 1.0 (``[-1, 1, Conv, [64, 3, 2]]``).
STEM_CHANNELS = 64
#: Detection levels -> our backbone ``out_indices``.
LEVEL_LAYOUTS = {3: (2, 3, 4), 4: (1, 2, 3, 4)}

_CONV_LEAVES = ('conv.weight', 'bn.weight', 'bn.bias', 'bn.running_mean',
                'bn.running_var', 'bn.num_batches_tracked')
# Per module kind: (ultralytics, ours) name pairs inside the module
# ({k}: a bottleneck number), and the parameter names below them.
_INNER = {
    'conv': ((('', ''), ), _CONV_LEAVES),
    'c2f': ((('cv1.', 'main_conv.'), ('cv2.', 'final_conv.'),
             ('m.{k}.cv1.', 'blocks.{k}.conv1.'),
             ('m.{k}.cv2.', 'blocks.{k}.conv2.')), _CONV_LEAVES),
    'sppf': ((('cv1.', 'conv1.'), ('cv2.', 'conv2.')), _CONV_LEAVES),
    'conv2d': ((('', ''), ), ('weight', 'bias')),
}
_KIND_NAMES = dict(conv='Conv', c2f='C2f', sppf='SPPF', conv2d='plain Conv2d')
_ULTRALYTICS, _OURS = 0, 1
# Problems listed in one error before "and N more".
_MAX_LISTED = 12


@dataclass(frozen=True)
class YOLOv8Size:
    """A YOLOv8 detection model's size and layout, as our configs say it.

    Attributes:
        deepen_factor, widen_factor, max_channels: ultralytics' depth, width
            and ``max_channels`` (our backbone's arguments of those names).
        out_indices: Our backbone stages of the detection levels: (2, 3, 4)
            is P3-P5, (1, 2, 3, 4) is P2-P5.
        reg_max: DFL bins per box side.
        num_classes: Classes of ultralytics' class branch (dropped), None
            when the weights have none.
        name: The ultralytics scale (``'n'`` ... ``'x'``), or None for a
            custom one.
    """

    deepen_factor: float
    widen_factor: float
    max_channels: int
    out_indices: Tuple[int, ...]
    reg_max: int
    num_classes: Optional[int]
    name: Optional[str] = None

    @property
    def levels(self) -> str:
        """``'P3-P5'`` or ``'P2-P5'``."""
        return f'P{self.out_indices[0] + 1}-P5'

    @property
    def detect_layer(self) -> int:
        """Index of ``Detect`` in ultralytics' ``model``."""
        return 10 + 6 * (len(self.out_indices) - 1)

    def cfg_options(self) -> Dict[str, Any]:
        """The config values (``--cfg-options`` keys) of the PSALM YOLO
        model these weights fit."""
        return {
            'model.backbone.deepen_factor': self.deepen_factor,
            'model.backbone.widen_factor': self.widen_factor,
            'model.backbone.max_channels': self.max_channels,
            'model.backbone.out_indices': tuple(self.out_indices),
            'model.bbox_head.reg_max': self.reg_max,
        }

    def model_cfg(self) -> Dict[str, Any]:
        """A PSALM YOLO model config of this size, with the data
        preprocessor that feeds what YOLOv8 expects (RGB scaled to [0, 1])
        and PSALM's default class side (80 prototypes of 64 dims)."""
        return dict(
            type='PSALMYOLO',
            data_preprocessor=dict(
                type='DetDataPreprocessor',
                mean=[0.0, 0.0, 0.0],
                std=[255.0, 255.0, 255.0],
                bgr_to_rgb=True,
                pad_size_divisor=32),
            backbone=dict(
                type='YOLOv8CSPDarknet',
                deepen_factor=self.deepen_factor,
                widen_factor=self.widen_factor,
                max_channels=self.max_channels,
                out_indices=tuple(self.out_indices)),
            neck=dict(type='YOLOv8PAFPN'),
            fusion=dict(type='PSALMFusion'),
            bbox_head=dict(type='PSALMDualHead', reg_max=self.reg_max))

    def describe(self) -> str:
        scale = f'yolov8{self.name}' if self.name else 'custom YOLOv8'
        strides = ', '.join(str(2**(i + 1)) for i in self.out_indices)
        return (f'{scale} (depth {self.deepen_factor}, width '
                f'{self.widen_factor}, max_channels {self.max_channels}), '
                f'{self.levels} (strides {strides}), reg_max '
                f'{self.reg_max}; ' +
                (f'its class branch has {self.num_classes} classes'
                 if self.num_classes else 'no class branch'))


def _architecture(deepen: float, widen: float,
                  max_channels: int) -> Tuple[Tuple[int, ...], ...]:
    """What our backbone and neck build from a size: the stem and stage
    widths, and the C2f block counts of the stages and the neck."""
    blocks = tuple(
        max(round(n * deepen), 1)
        for n in [b for _, b in STAGES] + [NECK_BLOCKS])
    widths = tuple(
        scaled_channels(c, widen, max_channels)
        for c in [STEM_CHANNELS] + [c for c, _ in STAGES])
    return widths, blocks


def _defaults(cls: type) -> Dict[str, Any]:
    return {
        name: p.default
        for name, p in inspect.signature(cls.__init__).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


def config_overrides(size: YOLOv8Size,
                     model_cfg: Mapping[str, Any]) -> Dict[str, Any]:
    """The ``--cfg-options`` a PSALM YOLO model config needs to fit these
    weights; empty when it fits as it is.

    Sizes compare by what they build (widths and block counts), so e.g.
    ``deepen_factor=0.3`` fits yolov8n's 0.33. Values a config leaves out
    are the classes' defaults.

    Raises:
        WeightConversionError: the config is not a PSALMYOLO with a
            YOLOv8CSPDarknet backbone.
    """
    backbone = dict(model_cfg.get('backbone', {}))
    if model_cfg.get('type') != 'PSALMYOLO' or \
            backbone.get('type') != 'YOLOv8CSPDarknet':
        raise WeightConversionError(
            'ultralytics YOLOv8 weights convert into PSALMYOLO with a '
            f"YOLOv8CSPDarknet backbone, not {model_cfg.get('type')} with "
            f"{backbone.get('type')}")
    backbone = {**_defaults(YOLOv8CSPDarknet), **backbone}
    head = {**_defaults(PSALMDualHead), **model_cfg.get('bbox_head', {})}
    wanted = size.cfg_options()
    needed = {}
    target = _architecture(size.deepen_factor, size.widen_factor,
                           size.max_channels)
    if _architecture(backbone['deepen_factor'], backbone['widen_factor'],
                     backbone['max_channels']) != target:
        for name in ('deepen_factor', 'widen_factor', 'max_channels'):
            needed[f'model.backbone.{name}'] = wanted[f'model.backbone.{name}']
    if tuple(sorted(backbone['out_indices'])) != tuple(size.out_indices):
        needed['model.backbone.out_indices'] = tuple(size.out_indices)
    # PSALMYOLO passes the backbone's depth to the neck unless the config
    # sets the neck's own.
    neck_deepen = model_cfg.get('neck', {}).get('deepen_factor')
    if neck_deepen is not None and _architecture(neck_deepen, 1.0,
                                                 1024)[1][-1] != target[1][-1]:
        needed['model.neck.deepen_factor'] = size.deepen_factor
    if head['reg_max'] != size.reg_max:
        needed['model.bbox_head.reg_max'] = size.reg_max
    return needed


def format_cfg_options(options: Mapping[str, Any]) -> str:
    """``--cfg-options`` words for a shell: ``a.b=1 c="(2,3,4)"``."""
    words = []
    for key, value in options.items():
        text = repr(value).replace(' ', '')
        words.append(f'{key}="{text}"' if '(' in text else f'{key}={text}')
    return ' '.join(words)


def _count_blocks(state: Mapping[str, torch.Tensor], layer: int) -> int:
    pattern = re.compile(rf'^model\.{layer}\.m\.(\d+)\.cv1\.conv\.weight$')
    return len({m.group(1) for m in map(pattern.match, state) if m})


def _require(state: Mapping[str, torch.Tensor], key: str) -> torch.Tensor:
    if key not in state:
        raise WeightConversionError(
            f'ultralytics weights: {key} is missing; this is not a YOLOv8 '
            'detection model with the yolov8.yaml / yolov8-p2.yaml layout '
            f'(it has {len(state)} tensors, e.g. {list(state)[:3]})')
    return state[key]


def infer_yolov8_size(state: Mapping[str, torch.Tensor]) -> YOLOv8Size:
    """Read the size and level layout from a YOLOv8 state dict (keys
    ``model.N....``, as ``DetectionModel.state_dict()`` names them).

    Raises:
        WeightConversionError: not YOLOv8's layout, or a size our backbone
            cannot build.
    """
    layers = {
        int(m.group(1))
        for m in map(re.compile(r'^model\.(\d+)\.').match, state) if m
    }
    if not layers:
        raise WeightConversionError(
            'ultralytics weights: no model.N.* keys; expected a '
            'DetectionModel state dict')
    detect = max(layers)
    levels = len({
        m.group(1)
        for m in map(
            re.compile(rf'^model\.{detect}\.cv2\.(\d+)\.0\.conv\.weight$').
            match, state) if m
    })
    if levels not in LEVEL_LAYOUTS or detect != 10 + 6 * (levels - 1):
        raise WeightConversionError(
            f'ultralytics weights: last layer {detect} with {levels} box '
            'branches (model.N.cv2.*) is not a layout PSALM YOLO has: '
            'yolov8.yaml (P3-P5, Detect at layer 22) or yolov8-p2.yaml '
            '(P2-P5, Detect at 28). yolov8-p6 adds a stride-64 backbone '
            'stage, which YOLOv8CSPDarknet does not have.')
    widths = tuple(
        int(_require(state, f'model.{i}.conv.weight').shape[0])
        for i in (0, 1, 3, 5, 7))
    blocks = tuple(_count_blocks(state, i) for i in (2, 4, 6, 8, 12))
    observed = (widths, blocks)
    reg_max = int(_require(state,
                           f'model.{detect}.cv2.0.2.weight').shape[0]) // 4
    classes = state.get(f'model.{detect}.cv3.0.2.weight')
    num_classes = None if classes is None else int(classes.shape[0])
    common = dict(
        out_indices=LEVEL_LAYOUTS[levels],
        reg_max=reg_max,
        num_classes=num_classes)
    for name, (deepen, widen, max_channels) in ULTRALYTICS_SCALES.items():
        if _architecture(deepen, widen, max_channels) == observed:
            return YOLOv8Size(deepen, widen, max_channels, name=name, **common)
    # A custom scale: any (depth, width, max_channels) that rebuilds every
    # width and block count is exact for our backbone.
    bases = [STEM_CHANNELS] + [c for c, _ in STAGES]
    block_bases = [b for _, b in STAGES] + [NECK_BLOCKS]
    for widen in sorted({w / b for w, b in zip(widths, bases)}):
        for max_channels in sorted({1024, round(widths[-1] / widen)}):
            for deepen in sorted({n / b for n, b in zip(blocks, block_bases)}):
                if _architecture(deepen, widen, max_channels) == observed:
                    return YOLOv8Size(
                        round(deepen, 4), widen, max_channels, **common)
    raise WeightConversionError(
        f'ultralytics weights: stem and stage widths {widths} and C2f '
        f'blocks {blocks[:4]} (neck {blocks[4]}) are not what '
        'YOLOv8CSPDarknet builds for any deepen_factor, widen_factor and '
        'max_channels (widths are min(c, max_channels) * widen rounded up '
        'to 8, blocks max(round(n * deepen), 1))')


def _module_pairs(size: YOLOv8Size) -> List[Tuple[str, str, str]]:
    """``(ultralytics prefix, our prefix, kind)`` of every module with
    weights (the table in the module docstring)."""
    levels = len(size.out_indices)
    pairs = [('model.0.', 'backbone.stem.', 'conv')]
    for stage in range(len(STAGES)):
        layer = 1 + 2 * stage
        pairs += [(f'model.{layer}.', f'backbone.stages.{stage}.0.', 'conv'),
                  (f'model.{layer + 1}.', f'backbone.stages.{stage}.1.', 'c2f')
                  ]
    pairs.append(('model.9.', 'backbone.stages.3.2.', 'sppf'))
    # Each neck step is three layers: upsample (or a stride-2 conv),
    # concat, C2f. ultralytics runs the top-down steps from the coarsest
    # level; our top_down[i] is the step whose output is level i.
    for step in range(levels - 1):
        pairs.append((f'model.{12 + 3 * step}.',
                      f'neck.top_down.{levels - 2 - step}.', 'c2f'))
    first_up = 10 + 3 * (levels - 1)
    for step in range(levels - 1):
        layer = first_up + 3 * step
        pairs += [(f'model.{layer}.', f'neck.downsample.{step}.', 'conv'),
                  (f'model.{layer + 2}.', f'neck.bottom_up.{step}.', 'c2f')]
    detect = size.detect_layer
    for level in range(levels):
        theirs = f'model.{detect}.cv2.{level}.'
        ours = f'bbox_head.box_branches.{level}.'
        pairs += [(f'{theirs}0.', f'{ours}0.', 'conv'),
                  (f'{theirs}1.', f'{ours}1.', 'conv'),
                  (f'{theirs}2.', f'{ours}2.', 'conv2d')]
    return pairs


def _inner_pattern(template: str) -> str:
    return r'(?P<k>\d+)'.join(re.escape(p) for p in template.split('{k}'))


def _translate(key: str, pairs: Sequence[Tuple[str, str, str]],
               side: int) -> Tuple[Optional[str], Optional[str]]:
    """``key`` of ``side`` as the other side names it.

    Returns:
        ``(name, None)``, or ``(None, why)`` when no rule applies.
    """
    other = 1 - side
    # The longest prefix names the innermost module.
    for pair in sorted(pairs, key=lambda p: -len(p[side])):
        prefix, kind = pair[side], pair[2]
        if not key.startswith(prefix):
            continue
        rest = key[len(prefix):]
        names, leaves = _INNER[kind]
        for inner in names:
            match = re.match(
                _inner_pattern(inner[side]) + '(?P<leaf>.*)$', rest)
            if match and match.group('leaf') in leaves:
                block = match.groupdict().get('k') or ''
                return (pair[other] + inner[other].replace('{k}', block) +
                        match.group('leaf')), None
        return None, (f'{prefix[:-1]} is a {_KIND_NAMES[kind]} '
                      f'({pair[other][:-1]} on the other side), which has '
                      f'no {rest!r}')
    return None, 'no module of the YOLOv8 layout has this name'


def _dropped(key: str, detect: int) -> bool:
    return key.startswith(f'model.{detect}.cv3.') or \
        key == f'model.{detect}.dfl.conv.weight'


def _group(key: str) -> str:
    """The part a key belongs to in the summary."""
    parts = key.split('.')
    if parts[0] == 'model':  # model.22.cv3.0.0... -> model.22.cv3
        return '.'.join(parts[:3])
    if parts[0] == 'bbox_head':
        return '.'.join(parts[:2]) if parts[1].endswith('branches') \
            else 'bbox_head.logit_*'
    return parts[0]


@dataclass
class ConversionResult(KeyConversionResult):
    """A converted state dict and what happened to every key.

    Attributes:
        state_dict: Our keys -> tensors, in our dtypes.
        converted: ``(ultralytics key, our key)`` pairs.
        new: Our keys the weights do not provide (PSALM's class side).
        dropped: ultralytics keys with no counterpart (class branch, DFL
            bins).
        size: The size read from the weights.
        source_info: What :func:`read_ultralytics_weights` says about the
            file (``format``, ``ultralytics_version``), for :meth:`meta`.
    """

    state_dict: Dict[str, torch.Tensor]
    converted: List[Tuple[str, str]]
    new: List[str]
    dropped: List[str]
    size: YOLOv8Size
    source_info: Dict[str, Any] = field(default_factory=dict)

    CONVERTED_FROM = 'ultralytics YOLOv8'
    KEY_LISTS = (('new', 'new (left at init)'), ('dropped', 'dropped'))
    _part = staticmethod(_group)

    def _model_meta(self) -> Dict[str, Any]:
        return dict(
            size=self.size.name or 'custom',
            cfg_options=self.size.cfg_options(),
            ultralytics_num_classes=self.size.num_classes)


def _module_of(key: str) -> str:
    """``model.12.cv1`` for ``model.12.cv1.bn.weight``."""
    parts = key.split('.')
    return '.'.join(parts[:-2] if parts[-2] in ('conv', 'bn') else parts[:-1])


def _problem_list(problems: List[Tuple[str, str]]) -> str:
    """The first problem of each module (one wrong size repeats over every
    tensor of a module), at most ``_MAX_LISTED`` of them."""
    by_module: Dict[str, List[str]] = {}
    for module, message in problems:
        by_module.setdefault(module, []).append(message)
    lines = [
        messages[0] + (f' (and {len(messages) - 1} more tensors of '
                       f'{module})' if len(messages) > 1 else '')
        for module, messages in by_module.items()
    ]
    more = len(lines) - _MAX_LISTED
    return '\n  '.join(lines[:_MAX_LISTED]) + (
        f'\n  ... and {more} more modules' if more > 0 else '')


def _check_dfl_bins(state: Mapping[str, torch.Tensor],
                    size: YOLOv8Size) -> None:
    key = f'model.{size.detect_layer}.dfl.conv.weight'
    if key not in state:
        return
    bins = state[key].detach().float().flatten()
    expected = torch.arange(size.reg_max, dtype=torch.float32)
    if bins.shape != expected.shape or not torch.equal(bins, expected):
        raise WeightConversionError(
            f'ultralytics {key} {_shape(state[key])} is not the fixed bins '
            f'0..{size.reg_max - 1}, which our DFLBoxCoder uses for the '
            'expected distance; these weights decode boxes differently')


def convert_ultralytics_state_dict(
        state: Mapping[str, torch.Tensor],
        target: Mapping[str, torch.Tensor]) -> ConversionResult:
    """Rename and check YOLOv8 weights against our model's state dict.

    Args:
        state: ultralytics ``DetectionModel`` state dict (``model.N.*``).
        target: Our model's ``state_dict()`` (names, shapes, dtypes).

    Returns:
        The converted state dict (tensors cast to our dtypes) and the
        converted / new / dropped keys.

    Raises:
        WeightConversionError: naming, for each problem, the ultralytics
            key and shape and our key and shape: a key with no
            counterpart, a shape mismatch, or one of our backbone, neck or
            box-branch keys the weights do not provide.
    """
    size = infer_yolov8_size(state)
    _check_dfl_bins(state, size)
    pairs = _module_pairs(size)
    problems: List[Tuple[str, str]] = []  # (module, message)
    out: Dict[str, torch.Tensor] = {}
    converted: List[Tuple[str, str]] = []
    dropped: List[str] = []
    claimed = set()  # our keys some ultralytics key maps to
    for key, value in state.items():
        if _dropped(key, size.detect_layer):
            dropped.append(key)
            continue
        ours, why = _translate(key, pairs, _ULTRALYTICS)
        theirs = f'ultralytics {key} {_shape(value)}'
        if ours is None:
            message = f'{theirs} maps to no key of ours: {why}'
        elif ours not in target:
            message = f'{theirs} maps to our {ours}, which our model does ' \
                'not have'
        elif _shape(target[ours]) != _shape(value):
            message = f'shape mismatch: {theirs} vs our {ours} ' \
                f'{_shape(target[ours])}'
        else:
            out[ours] = value.detach().to(target[ours].dtype).clone()
            converted.append((key, ours))
            message = None
        claimed.add(ours)
        if message is not None:
            problems.append((_module_of(key), message))
    new: List[str] = []
    for key, value in target.items():
        if key in claimed:
            continue
        if key.startswith(NEW_PREFIXES):
            new.append(key)
            continue
        theirs, _ = _translate(key, pairs, _OURS)
        ours = f'our {key} {_shape(value)}'
        if theirs is None:
            message = f'{ours} has no ultralytics counterpart and is not ' \
                "part of PSALM's class side"
        else:
            message = f'{ours} would come from ultralytics {theirs}, ' \
                'which the weights do not have'
        problems.append((_module_of(key), message))
    if problems:
        overrides = format_cfg_options(size.cfg_options())
        raise WeightConversionError(
            f'{len(problems)} problem(s) converting {size.describe()} '
            f'weights:\n  {_problem_list(problems)}\nThese weights fit the '
            f'model built with {overrides}.')
    return ConversionResult(out, converted, new, dropped, size)


def _state_dict_of(obj: Any, path: str) -> Dict[str, torch.Tensor]:
    """The weights inside a loaded ``.pt``/``.pth`` object."""
    if isinstance(obj, nn.Module):
        return obj.state_dict()
    if isinstance(obj, Mapping):
        # ultralytics prefers the EMA weights when a checkpoint has them
        # (its releases store the EMA as 'model' and ema=None).
        for key in ('ema', 'model', 'state_dict'):
            inner = obj.get(key)
            if isinstance(inner, (nn.Module, Mapping)):
                return _state_dict_of(inner, path)
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return dict(obj)
    raise WeightConversionError(
        f'{path}: expected an ultralytics checkpoint ({{"model": '
        'DetectionModel, ...}}), a DetectionModel or a state dict, got a '
        f'{type(obj).__name__}' +
        (f' with keys {list(obj)[:8]}' if isinstance(obj, Mapping) else ''))


def _ultralytics_keys(
        state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Keys as ``DetectionModel.state_dict()`` names them: without a DDP
    ``module.`` prefix, with ``model.`` (a state dict of ``model.model``
    lacks it)."""
    state = {re.sub(r'^module\.', '', k): v for k, v in state.items()}
    if not any(k.startswith('model.') for k in state):
        state = {f'model.{k}': v for k, v in state.items()}
    return state


def read_ultralytics_weights(
    path: str,
    trust_pickle: bool = False
) -> Tuple[Dict[str, torch.Tensor], Dict[str, Any]]:
    """Load YOLOv8 weights from an ultralytics ``.pt`` or a state dict file.

    A plain state dict (or a dict of them) loads with ``weights_only=True``.
    An ultralytics release ``.pt`` pickles its ``DetectionModel``:
    unpickling it imports ultralytics and can run code from the file, so it
    is loaded only with ``trust_pickle=True``.

    Args:
        path: The file.
        trust_pickle: Allow unpickling Python objects (needs ultralytics
            importable).

    Returns:
        ``(state dict keyed model.N.*, info)``; ``info`` has ``format``
        and, when the file says, ``ultralytics_version``.

    Raises:
        WeightConversionError: a pickled model without ``trust_pickle``,
            ultralytics not importable, or no weights in the file.
    """
    info: Dict[str, Any] = {}
    try:
        obj = torch.load(path, map_location='cpu', weights_only=True)
        info['format'] = 'state dict'
    except pickle.UnpicklingError as exc:
        if not trust_pickle:
            found = re.search(r'GLOBAL (\S+)', str(exc))
            what = found.group(1) if found else 'Python objects'
            raise WeightConversionError(
                f'{path} pickles {what}, not only tensors (an ultralytics '
                '.pt pickles its DetectionModel); unpickling it imports '
                'ultralytics and can run code from the file. If you trust '
                'the file, pass --trust-pickle (trust_pickle=True).') from None
        try:
            obj = torch.load(path, map_location='cpu', weights_only=False)
        except (ImportError, importlib.metadata.PackageNotFoundError) as exc:
            raise WeightConversionError(
                f'{path} pickles ultralytics objects and importing '
                f'ultralytics failed ({type(exc).__name__}: {exc}). Install '
                'ultralytics, or where it is installed save the weights as a '
                "state dict: ckpt = torch.load(path, weights_only=False); "
                "torch.save((ckpt.get('ema') or ckpt['model']).float()"
                ".state_dict(), 'yolov8_state.pth')") from None
        info['format'] = 'pickled ultralytics model'
        if isinstance(obj, Mapping) and isinstance(obj.get('version'), str):
            info['ultralytics_version'] = obj['version']
    return _ultralytics_keys(_state_dict_of(obj, path)), info
