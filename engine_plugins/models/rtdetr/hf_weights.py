"""Hugging Face transformers RT-DETR weights as our RT-DETR's weights.

transformers' ``RTDetrForObjectDetection`` (the PekingU ``rtdetr_r18vd``,
``r34vd``, ``r50vd`` and ``r101vd`` checkpoints, or any
``save_pretrained`` folder of it) computes, in eval mode, what our
:class:`RTDETR` computes when it is built with the values of
:meth:`HFRTDetrArch.cfg_options`. Three of those values are not our
defaults because the layouts differ:

* the backbone is ResNet-vd: ``type='ResNetVd'`` (mmdet's ``ResNetV1d``:
  3-conv deep stem, 2x2 average pool before the strided blocks' 1x1
  shortcut conv) with ``first_block_projection=True`` (a 1x1 conv + BN
  shortcut on the first block of the first stage, which mmdet gives only
  where the block changes shape: ResNet-18/34 differ, 50/101 do not);
* the AIFI position embedding puts the row sines first:
  ``encoder.pe_order='hw'``;
* the input is RGB scaled to [0, 1] (transformers' ``RTDetrImageProcessor``
  rescales by 1/255 and does not normalize): the data preprocessor's
  ``mean=[0, 0, 0]``, ``std=[255, 255, 255]``, ``bgr_to_rgb=True``.

Key mapping, transformers (5.x names, ``model.`` prefix left out) ->
ours; ``s``, ``b``, ``i``, ``j``, ``k`` number stages, blocks, decoder
layers, levels and RepVGG blocks. ``save_pretrained`` writes the 4.x names
``...self_attn.out_proj``, ``...layers.{i}.fc1/fc2`` and
``encoder.encoder.{i}.layers``; both are read.

* ``backbone.model.embedder.embedder.{j}.convolution`` / ``.normalization``
  -> ``backbone.stem.{3j}`` / ``.{3j+1}``
* ``backbone.model.encoder.stages.{s}.layers.{b}.layer.{j}.convolution``
  / ``.normalization`` -> ``backbone.layer{s+1}.{b}.conv{j+1}`` /
  ``.bn{j+1}``
* ``...layers.0.shortcut.convolution`` (stage 0) or
  ``...layers.0.shortcut.1.convolution`` (after the 2x2 average pool) /
  ``.normalization`` -> ``backbone.layer{s+1}.0.downsample.1`` / ``.2``
  (mmdet's ``ResNetV1d`` has its pool at ``.0`` in every stage: a no-op
  1x1 pool in stage 0)
* ``encoder_input_proj.{j}.0`` / ``.1`` -> ``encoder.input_proj.{j}.conv``
  / ``.bn``
* ``encoder.aifi.0.layers.0.self_attn.{q,k,v}_proj`` ->
  ``encoder.aifi.self_attn.in_proj_{weight,bias}`` (stacked q, k, v);
  ``.o_proj`` -> ``.out_proj``; ``self_attn_layer_norm``, ``mlp.fc1``,
  ``mlp.fc2``, ``final_layer_norm`` -> ``norm1``, ``ffn.layers.0.0``,
  ``ffn.layers.1``, ``norm2``
* ``encoder.{lateral,downsample}_convs.{j}.conv`` / ``.norm`` -> same
  names, ``.conv`` / ``.bn``; ``encoder.{fpn,pan}_blocks.{j}.conv{1,2,3}``
  -> same names; ``...bottlenecks.{k}.conv1`` / ``.conv2`` ->
  ``...blocks.{k}.conv3x3`` / ``.conv1x1``
* ``decoder_input_proj.{j}.0`` / ``.1`` -> ``decoder.input_proj.{j}.conv``
  / ``.bn``
* ``enc_output``, ``enc_score_head``, ``enc_bbox_head`` ->
  ``decoder.query_selection.memory_proj``, ``.score_head``, ``.bbox_head``;
  ``denoising_class_embed`` -> ``decoder.denoising.label_embedding``
* ``decoder.layers.{i}.self_attn.{q,k,v}_proj`` / ``.o_proj`` ->
  ``decoder.layers.{i}.self_attn.attn.in_proj_*`` (stacked) /
  ``.out_proj``; ``encoder_attn.*`` -> ``cross_attn.*`` (same leaves and
  the same (heads, levels, points) layout of ``sampling_offsets`` and
  ``attention_weights``); ``self_attn_layer_norm``,
  ``encoder_attn_layer_norm``, ``final_layer_norm`` -> ``norms.0``,
  ``norms.1``, ``norms.2``; ``mlp.fc1`` / ``mlp.fc2`` ->
  ``ffn.layers.0.0`` / ``ffn.layers.1``
* ``decoder.query_pos_head``, ``decoder.class_embed.{i}``,
  ``decoder.bbox_embed.{i}`` -> ``decoder.query_pos_head``,
  ``decoder.score_heads.{i}``, ``decoder.bbox_heads.{i}``

transformers' frozen backbone BN has no ``num_batches_tracked``; ours are
*filled* with 0 (their value does not enter an eval forward, nor a
training one with ``norm_eval``). With ``new_class_heads=True`` the class
layers (``enc_score_head``, ``class_embed``, ``denoising_class_embed``)
are *dropped* and ours stay *new*, to fine-tune on other classes.

Settings our model cannot express are refused with a list of them: a
backbone other than transformers' ResNet-vd (``rt_detr_resnet``),
``downsample_in_first_stage``, more than one AIFI layer or AIFI on another
level, ``normalize_before``, ``learn_initial_query``, extra decoder levels,
a decoder activation other than ReLU, norm eps other than 1e-5.

What still differs, outside the network: transformers' post-processing
does not clip boxes to the image, ours does (``RTDETR.decode`` with
``rescale``); its image processor resizes with PIL, our pipelines with
mmcv (cv2), so the same image file gives slightly different inputs; with
``eval_size`` set, transformers runs AIFI without a position embedding in
eval mode (a note is returned in :attr:`HFRTDetrArch.notes`).

Example:
    >>> state, config, info = read_hf_rtdetr('rtdetr_r18vd')
    >>> arch = arch_from_hf_config(config)
    >>> arch.cfg_options()['model.backbone.depth']
    18
    >>> cfg = default_model_cfg(arch, 'configs/rtdetr/rtdetr_r50_model.py')
    >>> model = MODELS.build(cfg.model)
    >>> result = convert_hf_rtdetr_state_dict(state, arch,
    ...                                       model.state_dict())
    >>> print(result.summary())
    >>> torch.save(dict(state_dict=result.state_dict,
    ...                 meta=result.meta(source='rtdetr_r18vd')), 'out.pth')
"""
import glob
import inspect
import json
import os.path as osp
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Tuple

import torch
from mmengine.config import Config

from engine_plugins.models.weight_conversion import (KeyConversionResult,
                                                     WeightConversionError)
from engine_plugins.models.weight_conversion import tensor_shape as _shape
from engine_plugins.registry import MODELS

#: ``(layer_type, depths)`` of transformers' ResNet-vd -> mmdet ``depth``.
RESNET_DEPTHS = {
    ('basic', (2, 2, 2, 2)): 18,
    ('basic', (3, 4, 6, 3)): 34,
    ('bottleneck', (3, 4, 6, 3)): 50,
    ('bottleneck', (3, 4, 23, 3)): 101,
    ('bottleneck', (3, 8, 36, 3)): 152,
}
#: transformers activation names -> mmcv activation types.
ACTIVATIONS = {'relu': 'ReLU', 'silu': 'SiLU', 'gelu': 'GELU'}
#: What transformers' RT-DETR image processor feeds: RGB / 255.
HF_INPUT = dict(mean=[0.0, 0.0, 0.0], std=[255.0, 255.0, 255.0])
#: transformers' RepVGG blocks per CSPRepLayer (fixed there).
CSP_BLOCKS = 3
#: Norm eps our layers use (mmcv BN and torch LayerNorm defaults).
NORM_EPS = 1e-5

# transformers 4.x names (written by save_pretrained) -> 5.x names.
_LEGACY_RENAMES = (
    (re.compile(r'\.out_proj\.'), '.o_proj.'),
    (re.compile(r'\.layers\.(\d+)\.fc([12])\.'), r'.layers.\1.mlp.fc\2.'),
    (re.compile(r'^model\.encoder\.encoder\.(\d+)\.layers\.'),
     r'model.encoder.aifi.\1.layers.'),
)
_HF_CLASS_KEYS = re.compile(r'^model\.(enc_score_head\.|decoder\.class_embed'
                            r'\.|denoising_class_embed\.)')
_OUR_CLASS_KEYS = re.compile(
    r'^decoder\.(query_selection\.score_head\.|score_heads\.|'
    r'denoising\.label_embedding\.)')
_BN = ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked')
_LINEAR = ('weight', 'bias')
_QKV = ('q_proj', 'k_proj', 'v_proj')
_MAX_LISTED = 12


@dataclass(frozen=True)
class HFRTDetrArch:
    """The architecture of a transformers RT-DETR, as our config says it.

    Attributes:
        layer_type: transformers' ResNet block, ``'basic'`` or
            ``'bottleneck'``.
        depth: mmdet ResNet depth (18, 34, 50, 101, 152).
        stem_channels, base_channels: mmdet ``ResNet`` widths.
        out_indices: Our backbone stages of the encoder levels (0-based).
        style: ``'pytorch'`` (stride on the 3x3 conv) or ``'caffe'`` (on
            the first 1x1; transformers' ``downsample_in_bottleneck``).
        encoder_in_channels: Channels of the backbone levels.
        hidden_dim, encoder_heads, encoder_ffn_dim: AIFI / CCFM widths.
        encoder_act: AIFI feed-forward activation name.
        expansion: ``CSPRepLayer`` hidden ratio.
        pe_temperature: AIFI position-embedding frequency base.
        act: Activation of the CCFM convs (transformers' name).
        embed_dims: Decoder width (``d_model``).
        num_queries, num_layers, decoder_heads, num_points,
            decoder_ffn_dim: Decoder settings.
        num_classes: Classes of the class heads (``num_labels``).
        num_denoising, label_noise_ratio, box_noise_scale: Denoising
            (training only).
        notes: Differences that do not block the conversion, for the user.
    """

    layer_type: str
    depth: int
    stem_channels: int
    base_channels: int
    out_indices: Tuple[int, ...]
    style: str
    encoder_in_channels: Tuple[int, ...]
    hidden_dim: int
    encoder_heads: int
    encoder_ffn_dim: int
    encoder_act: str
    expansion: float
    pe_temperature: float
    act: str
    embed_dims: int
    num_queries: int
    num_layers: int
    decoder_heads: int
    num_points: int
    decoder_ffn_dim: int
    num_classes: int
    num_denoising: int
    label_noise_ratio: float
    box_noise_scale: float
    notes: Tuple[str, ...] = ()

    @property
    def num_levels(self) -> int:
        """Feature levels the encoder and decoder see (3)."""
        return len(self.out_indices)

    def cfg_options(self) -> Dict[str, Any]:
        """The config values (``--cfg-options`` keys) of our RT-DETR that
        computes what these weights compute."""
        return {
            'model.data_preprocessor.mean': list(HF_INPUT['mean']),
            'model.data_preprocessor.std': list(HF_INPUT['std']),
            'model.data_preprocessor.bgr_to_rgb': True,
            'model.backbone.type': 'ResNetVd',
            'model.backbone.depth': self.depth,
            'model.backbone.stem_channels': self.stem_channels,
            'model.backbone.base_channels': self.base_channels,
            'model.backbone.out_indices': tuple(self.out_indices),
            'model.backbone.style': self.style,
            'model.backbone.first_block_projection': True,
            # the converted weights replace any ImageNet initialization
            'model.backbone.init_cfg': None,
            'model.encoder.hidden_dim': self.hidden_dim,
            'model.encoder.num_heads': self.encoder_heads,
            'model.encoder.ffn_dim': self.encoder_ffn_dim,
            'model.encoder.aifi_act': self.encoder_act,
            'model.encoder.num_csp_blocks': CSP_BLOCKS,
            'model.encoder.expansion': self.expansion,
            'model.encoder.pe_temperature': self.pe_temperature,
            'model.encoder.pe_order': 'hw',
            'model.encoder.act_cfg.type': ACTIVATIONS[self.act],
            'model.decoder.embed_dims': self.embed_dims,
            'model.decoder.num_queries': self.num_queries,
            'model.decoder.num_layers': self.num_layers,
            'model.decoder.eval_idx': -1,
            'model.decoder.num_heads': self.decoder_heads,
            'model.decoder.num_points': self.num_points,
            'model.decoder.ffn_channels': self.decoder_ffn_dim,
            'model.decoder.denoising.num_denoising': self.num_denoising,
            'model.decoder.denoising.label_noise_ratio':
            self.label_noise_ratio,
            'model.decoder.denoising.box_noise_scale': self.box_noise_scale,
            'model.criterion.num_classes': self.num_classes,
            # transformers' post-processing keeps num_queries detections
            'model.test_cfg.max_per_img': self.num_queries,
        }

    def describe(self) -> str:
        """One line for the CLI and error messages."""
        name = f'r{self.depth}vd'
        return (f'RT-DETR {name} ({self.layer_type} blocks, levels '
                f'{list(self.encoder_in_channels)} -> {self.hidden_dim}, CSP '
                f'expansion {self.expansion}, {self.num_layers} decoder '
                f'layers of {self.embed_dims}, {self.num_queries} queries, '
                f'{self.num_classes} classes)')


def _get(config: Any, name: str, default: Any = None) -> Any:
    if isinstance(config, Mapping):
        return config.get(name, default)
    return getattr(config, name, default)


def arch_from_hf_config(config: Any) -> HFRTDetrArch:
    """Read the architecture from a transformers ``RTDetrConfig``.

    Args:
        config: An ``RTDetrConfig`` (its ``backbone_config`` an
            ``RTDetrResNetConfig``).

    Raises:
        WeightConversionError: listing every setting our RT-DETR cannot
            express.
    """
    problems: List[str] = []
    notes: List[str] = []
    backbone = _get(config, 'backbone_config')
    model_type = _get(backbone, 'model_type')
    if model_type != 'rt_detr_resnet':
        raise WeightConversionError(
            f'the backbone is {model_type!r}; only transformers\' '
            "ResNet-vd ('rt_detr_resnet') converts into our ResNetVd")
    layer_type = _get(backbone, 'layer_type')
    depths = tuple(_get(backbone, 'depths'))
    depth = RESNET_DEPTHS.get((layer_type, depths))
    if depth is None:
        problems.append(f'backbone {layer_type} blocks {list(depths)} are '
                        'no mmdet ResNet depth (18, 34: basic 2-2-2-2, '
                        '3-4-6-3; 50, 101, 152: bottleneck 3-4-6-3, '
                        '3-4-23-3, 3-8-36-3)')
    expansion = 1 if layer_type == 'basic' else 4
    hidden_sizes = list(_get(backbone, 'hidden_sizes'))
    base = hidden_sizes[0] // expansion
    want_sizes = [base * 2**i * expansion for i in range(len(hidden_sizes))]
    if hidden_sizes != want_sizes:
        problems.append(f'backbone hidden_sizes {hidden_sizes} do not double '
                        f'per stage (mmdet builds {want_sizes})')
    stem = int(_get(backbone, 'embedding_size'))
    if layer_type == 'basic' and stem != hidden_sizes[0]:
        problems.append(f'basic-block backbone with embedding_size {stem} != '
                        f'hidden_sizes[0] {hidden_sizes[0]}')
    if _get(backbone, 'num_channels', 3) != 3:
        problems.append(
            f"backbone num_channels {_get(backbone, 'num_channels')} (our "
            'data preprocessor and configs feed 3)')
    if _get(backbone, 'hidden_act', 'relu') != 'relu':
        problems.append(f"backbone hidden_act {_get(backbone, 'hidden_act')}"
                        " (mmdet's ResNet uses ReLU)")
    if _get(backbone, 'downsample_in_first_stage', False):
        problems.append('backbone downsample_in_first_stage=True (a strided '
                        'first stage with a plain strided shortcut)')
    style = 'caffe' if _get(backbone, 'downsample_in_bottleneck',
                            False) else 'pytorch'
    hf_out = list(_get(backbone, 'out_indices') or [])
    if not hf_out or min(hf_out) < 1:
        problems.append(f'backbone out_indices {hf_out} (the stem, index 0, '
                        'is no level of ours)')
    out_indices = tuple(i - 1 for i in hf_out)
    stage_channels = [hidden_sizes[i] for i in out_indices if i >= 0]
    in_channels = tuple(_get(config, 'encoder_in_channels'))
    if list(in_channels) != stage_channels:
        problems.append(f'encoder_in_channels {list(in_channels)} != the '
                        f'backbone levels\' channels {stage_channels}')
    levels = len(in_channels)
    if levels < 2:
        problems.append(f'{levels} feature level(s); the hybrid encoder '
                        'needs at least 2')
    if _get(config, 'encoder_layers') != 1:
        problems.append(f"encoder_layers={_get(config, 'encoder_layers')} "
                        '(our AIFI is one layer)')
    if list(_get(config, 'encode_proj_layers')) != [levels - 1]:
        problems.append(
            f"encode_proj_layers={list(_get(config, 'encode_proj_layers'))}"
            f' (our AIFI runs on the coarsest level only, [{levels - 1}])')
    if _get(config, 'normalize_before'):
        problems.append('normalize_before=True (our AIFI is post-norm)')
    hidden = int(_get(config, 'encoder_hidden_dim'))
    if list(_get(config, 'decoder_in_channels')) != [hidden] * levels:
        problems.append(f"decoder_in_channels "
                        f"{list(_get(config, 'decoder_in_channels'))} != "
                        f'[encoder_hidden_dim] * {levels}')
    if _get(config, 'num_feature_levels') != levels:
        problems.append(f"num_feature_levels="
                        f"{_get(config, 'num_feature_levels')} (extra "
                        'stride-2 decoder levels are not built here; we '
                        f'have {levels})')
    if _get(config, 'learn_initial_query'):
        problems.append('learn_initial_query=True (our queries are the '
                        'selected memory)')
    act = _get(config, 'activation_function')
    encoder_act = _get(config, 'encoder_activation_function')
    for name, value in (('activation_function', act),
                        ('encoder_activation_function', encoder_act)):
        if value not in ACTIVATIONS:
            problems.append(f'{name}={value!r} (one of '
                            f'{sorted(ACTIVATIONS)} converts)')
    if _get(config, 'decoder_activation_function') != 'relu':
        problems.append(
            'decoder_activation_function='
            f"{_get(config, 'decoder_activation_function')!r} (mmdet's "
            'decoder FFN uses ReLU)')
    for name in ('layer_norm_eps', 'batch_norm_eps'):
        if float(_get(config, name, NORM_EPS)) != NORM_EPS:
            problems.append(f'{name}={_get(config, name)} (ours: 1e-5)')
    if problems:
        raise WeightConversionError(
            'transformers RT-DETR settings our RT-DETR does not have:\n  ' +
            '\n  '.join(problems))
    if _get(config, 'eval_size') is not None:
        notes.append(
            f"eval_size={_get(config, 'eval_size')}: transformers then runs "
            'AIFI without a position embedding in eval mode; ours always '
            'adds it (as in training), so eval outputs differ')
    dropouts = {
        name: _get(config, name, 0.0)
        for name in ('dropout', 'attention_dropout', 'activation_dropout')
    }
    if any(dropouts.values()):
        notes.append(
            f'{dropouts} (training only): ours has one dropout each in '
            'model.encoder.dropout and model.decoder.dropout (default 0), '
            'set them for fine-tuning')
    if _get(config, 'anchor_image_size'):
        notes.append(
            'anchor_image_size='
            f"{_get(config, 'anchor_image_size')}: transformers uses anchors "
            'of that input size in eval mode; ours are computed for the '
            'actual input (the same at that size)')
    return HFRTDetrArch(
        layer_type=layer_type,
        depth=depth,
        stem_channels=stem,
        base_channels=base,
        out_indices=out_indices,
        style=style,
        encoder_in_channels=in_channels,
        hidden_dim=hidden,
        encoder_heads=int(_get(config, 'encoder_attention_heads')),
        encoder_ffn_dim=int(_get(config, 'encoder_ffn_dim')),
        encoder_act=encoder_act,
        expansion=float(_get(config, 'hidden_expansion')),
        pe_temperature=float(_get(config, 'positional_encoding_temperature')),
        act=act,
        embed_dims=int(_get(config, 'd_model')),
        num_queries=int(_get(config, 'num_queries')),
        num_layers=int(_get(config, 'decoder_layers')),
        decoder_heads=int(_get(config, 'decoder_attention_heads')),
        num_points=int(_get(config, 'decoder_n_points')),
        decoder_ffn_dim=int(_get(config, 'decoder_ffn_dim')),
        num_classes=int(_get(config, 'num_labels')),
        num_denoising=int(_get(config, 'num_denoising')),
        label_noise_ratio=float(_get(config, 'label_noise_ratio')),
        box_noise_scale=float(_get(config, 'box_noise_scale')),
        notes=tuple(notes))


# ---- our config against the weights ---------------------------------------
def _class_defaults(type_name: Any) -> Dict[str, Any]:
    """Keyword defaults of a registered class, along its bases (for
    subclasses that pass ``**kwargs`` on)."""
    try:
        cls = MODELS.get(type_name) if isinstance(type_name,
                                                  str) else type_name
    except Exception:  # a type no registry knows: no defaults
        return {}
    defaults: Dict[str, Any] = {}
    for klass in reversed(getattr(cls, '__mro__', ())):
        init = klass.__dict__.get('__init__')
        if init is None:
            continue
        try:
            params = inspect.signature(init).parameters
        except (TypeError, ValueError):  # a builtin without a signature
            continue
        for name, param in params.items():
            if param.default is not inspect.Parameter.empty:
                defaults[name] = param.default
    return defaults


def _effective(model_cfg: Mapping[str, Any], dotted: str) -> Any:
    """The value ``model_cfg`` gives the ``model.a.b`` key, or the default
    of the class that reads it."""
    node: Any = {'model': model_cfg}
    parts = dotted.split('.')
    defaults: Dict[str, Any] = {}
    for part in parts:
        if isinstance(node, Mapping) and 'type' in node:
            defaults = _class_defaults(node['type'])
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif part in defaults:
            node = defaults[part]
        else:
            return None
        defaults = {}
    return node


def _normalized(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_normalized(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _normalized(v) for k, v in value.items()}
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return float(value)
    return value


def config_overrides(arch: HFRTDetrArch,
                     model_cfg: Mapping[str, Any]) -> Dict[str, Any]:
    """The ``--cfg-options`` an RTDETR model config needs to compute what
    the weights compute; empty when it fits as it is.

    Values the config leaves out are the classes' defaults; our RT-DETR's
    ``test_cfg.max_per_img`` defaults to 300. A bottleneck backbone also
    fits as mmdet's ``ResNetV1d`` (the projection option changes nothing
    there). ``backbone.init_cfg`` is not compared (the converted weights
    replace it when loaded).

    Raises:
        WeightConversionError: the config is not an RTDETR.
    """
    if model_cfg.get('type') != 'RTDETR':
        raise WeightConversionError(
            'transformers RT-DETR weights convert into type=RTDETR, not '
            f"{model_cfg.get('type')}")
    needed = {}
    bottleneck = arch.layer_type == 'bottleneck'
    for key, want in arch.cfg_options().items():
        have = _effective(model_cfg, key)
        if key == 'model.backbone.init_cfg' or (
                bottleneck and key == 'model.backbone.first_block_projection'):
            continue
        if key == 'model.backbone.type' and bottleneck and \
                have == 'ResNetV1d':
            continue
        if key == 'model.test_cfg.max_per_img' and have is None:
            have = 300
        if key == 'model.backbone.stem_channels' and have is None:
            have = _effective(model_cfg, 'model.backbone.base_channels')
        if _normalized(have) != _normalized(want):
            needed[key] = want
    return needed


def format_cfg_options(options: Mapping[str, Any]) -> str:
    """``--cfg-options`` words for a shell, as mmengine's ``DictAction``
    reads them back: ``a.b=1 c.type=ResNetVd d="(1,2,3)" e=None``."""
    words = []
    for key, value in options.items():
        text = value if isinstance(value, str) else repr(value).replace(
            ' ', '')
        words.append(f'{key}="{text}"' if any(
            c in text for c in '([') else f'{key}={text}')
    return ' '.join(words)


def default_model_cfg(arch: HFRTDetrArch, base_config: str) -> Config:
    """``base_config``'s model with :meth:`HFRTDetrArch.cfg_options`
    merged in (a ``Config`` whose ``model`` fits the weights)."""
    cfg = Config.fromfile(base_config)
    cfg.merge_from_dict(arch.cfg_options())
    return cfg


# ---- the key mapping ------------------------------------------------------
def _leaves(hf: str, ours: str, leaves) -> List[Tuple[str, str, int]]:
    return [(f'{hf}.{leaf}', f'{ours}.{leaf}', -1) for leaf in leaves]


def _conv_bn(hf_conv: str, hf_bn: str, our_conv: str, our_bn: str):
    return [(f'{hf_conv}.weight', f'{our_conv}.weight', -1)] + \
        _leaves(hf_bn, our_bn, _BN)


def _attention(hf: str, ours: str) -> List[Tuple[str, str, int]]:
    """q/k/v projections stacked into ``in_proj_*``; slot = position."""
    pairs = [(f'{hf}.{proj}.{leaf}', f'{ours}.in_proj_{leaf}', slot)
             for slot, proj in enumerate(_QKV) for leaf in _LINEAR]
    return pairs + _leaves(f'{hf}.o_proj', f'{ours}.out_proj', _LINEAR)


def _mlp(hf: str, ours: str, layers: int) -> List[Tuple[str, str, int]]:
    return [
        pair for j in range(layers)
        for pair in _leaves(f'{hf}.layers.{j}', f'{ours}.layers.{j}', _LINEAR)
    ]


def _csp(hf: str, ours: str, arch: HFRTDetrArch):
    pairs = []
    convs = ['conv1', 'conv2']
    if int(arch.hidden_dim * arch.expansion) != arch.hidden_dim:
        convs.append('conv3')
    for conv in convs:
        pairs += _conv_bn(f'{hf}.{conv}.conv', f'{hf}.{conv}.norm',
                          f'{ours}.{conv}.conv', f'{ours}.{conv}.bn')
    for k in range(CSP_BLOCKS):
        for theirs, mine in (('conv1', 'conv3x3'), ('conv2', 'conv1x1')):
            h = f'{hf}.bottlenecks.{k}.{theirs}'
            o = f'{ours}.blocks.{k}.{mine}'
            pairs += _conv_bn(f'{h}.conv', f'{h}.norm', f'{o}.conv', f'{o}.bn')
    return pairs


def key_pairs(arch: HFRTDetrArch) -> List[Tuple[str, str, int]]:
    """Every ``(transformers key, our key, slot)`` of the architecture.

    ``slot`` is -1 for a one-to-one copy, else the position (q, k, v) of
    the transformers tensor in our stacked ``in_proj`` tensor. Keys are
    transformers 5 names with the ``model.`` prefix.
    """
    stage_blocks = dict(
        (d, blocks) for (_, blocks), d in RESNET_DEPTHS.items())[arch.depth]
    pairs: List[Tuple[str, str, int]] = []
    hb, ob = 'model.backbone.model', 'backbone'
    for j in range(3):
        h = f'{hb}.embedder.embedder.{j}'
        pairs += _conv_bn(f'{h}.convolution', f'{h}.normalization',
                          f'{ob}.stem.{3 * j}', f'{ob}.stem.{3 * j + 1}')
    convs = 2 if arch.layer_type == 'basic' else 3
    for s, blocks in enumerate(stage_blocks):
        for b in range(blocks):
            h = f'{hb}.encoder.stages.{s}.layers.{b}'
            o = f'{ob}.layer{s + 1}.{b}'
            for j in range(convs):
                pairs += _conv_bn(f'{h}.layer.{j}.convolution',
                                  f'{h}.layer.{j}.normalization',
                                  f'{o}.conv{j + 1}', f'{o}.bn{j + 1}')
            if b == 0:
                # transformers pools first (shortcut.0) in the strided
                # stages only; mmdet's ResNetV1d in every first block (a
                # no-op 1x1 pool at stride 1), so ours are always .1 / .2
                hs = f'{h}.shortcut' if s == 0 else f'{h}.shortcut.1'
                pairs += _conv_bn(f'{hs}.convolution', f'{hs}.normalization',
                                  f'{o}.downsample.1', f'{o}.downsample.2')
    he, oe = 'model.encoder', 'encoder'
    for j in range(arch.num_levels):
        pairs += _conv_bn(f'model.encoder_input_proj.{j}.0',
                          f'model.encoder_input_proj.{j}.1',
                          f'{oe}.input_proj.{j}.conv',
                          f'{oe}.input_proj.{j}.bn')
    h, o = f'{he}.aifi.0.layers.0', f'{oe}.aifi'
    pairs += _attention(f'{h}.self_attn', f'{o}.self_attn')
    pairs += _leaves(f'{h}.self_attn_layer_norm', f'{o}.norm1', _LINEAR)
    pairs += _leaves(f'{h}.mlp.fc1', f'{o}.ffn.layers.0.0', _LINEAR)
    pairs += _leaves(f'{h}.mlp.fc2', f'{o}.ffn.layers.1', _LINEAR)
    pairs += _leaves(f'{h}.final_layer_norm', f'{o}.norm2', _LINEAR)
    for j in range(arch.num_levels - 1):
        for name in ('lateral_convs', 'downsample_convs'):
            h, o = f'{he}.{name}.{j}', f'{oe}.{name}.{j}'
            pairs += _conv_bn(f'{h}.conv', f'{h}.norm', f'{o}.conv', f'{o}.bn')
        for name in ('fpn_blocks', 'pan_blocks'):
            pairs += _csp(f'{he}.{name}.{j}', f'{oe}.{name}.{j}', arch)
    od = 'decoder'
    for j in range(arch.num_levels):
        pairs += _conv_bn(f'model.decoder_input_proj.{j}.0',
                          f'model.decoder_input_proj.{j}.1',
                          f'{od}.input_proj.{j}.conv',
                          f'{od}.input_proj.{j}.bn')
    qs = f'{od}.query_selection'
    for j in range(2):
        pairs += _leaves(f'model.enc_output.{j}', f'{qs}.memory_proj.{j}',
                         _LINEAR)
    pairs += _leaves('model.enc_score_head', f'{qs}.score_head', _LINEAR)
    pairs += _mlp('model.enc_bbox_head', f'{qs}.bbox_head', 3)
    if arch.num_denoising > 0:
        pairs.append(('model.denoising_class_embed.weight',
                      f'{od}.denoising.label_embedding.weight', -1))
    hd = 'model.decoder'
    for i in range(arch.num_layers):
        h, o = f'{hd}.layers.{i}', f'{od}.layers.{i}'
        pairs += _attention(f'{h}.self_attn', f'{o}.self_attn.attn')
        for leaf in ('sampling_offsets', 'attention_weights', 'value_proj',
                     'output_proj'):
            pairs += _leaves(f'{h}.encoder_attn.{leaf}',
                             f'{o}.cross_attn.{leaf}', _LINEAR)
        for n, norm in enumerate(
            ('self_attn_layer_norm', 'encoder_attn_layer_norm',
             'final_layer_norm')):
            pairs += _leaves(f'{h}.{norm}', f'{o}.norms.{n}', _LINEAR)
        pairs += _leaves(f'{h}.mlp.fc1', f'{o}.ffn.layers.0.0', _LINEAR)
        pairs += _leaves(f'{h}.mlp.fc2', f'{o}.ffn.layers.1', _LINEAR)
        pairs += _leaves(f'{hd}.class_embed.{i}', f'{od}.score_heads.{i}',
                         _LINEAR)
        pairs += _mlp(f'{hd}.bbox_embed.{i}', f'{od}.bbox_heads.{i}', 3)
    pairs += _mlp(f'{hd}.query_pos_head', f'{od}.query_pos_head', 2)
    return pairs


def normalize_hf_keys(
        state: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """transformers 5 names for a state dict in 4.x or 5.x names (what
    ``save_pretrained`` writes, or ``model.state_dict()``), with the
    ``model.`` prefix (a bare ``RTDetrModel`` state dict lacks it)."""
    if state and not any(k.startswith('model.') for k in state):
        state = {f'model.{k}': v for k, v in state.items()}
    out = {}
    for key, value in state.items():
        for pattern, repl in _LEGACY_RENAMES:
            key = pattern.sub(repl, key)
        out[key] = value
    return out


def _group(key: str) -> str:
    """The part a key belongs to in the summary."""
    parts = key.split('.')
    if parts[0] == 'model':
        return '.'.join(parts[:2])
    if parts[0] == 'decoder' and parts[1] in ('layers', 'query_selection'):
        return '.'.join(parts[:2])
    if parts[0] == 'decoder':
        return 'decoder (proj, heads)'
    return parts[0]


@dataclass
class HFConversionResult(KeyConversionResult):
    """A converted state dict and what happened to every key.

    Attributes:
        state_dict: Our keys -> tensors, in our dtypes.
        converted: ``(transformers keys, our key)``: one key, or q, k, v
            for a stacked attention projection.
        filled: Our BN ``num_batches_tracked`` the weights lack (0).
        new: Our keys left at their initial values (class layers with
            ``new_class_heads``).
        dropped: transformers keys not converted (their class layers with
            ``new_class_heads``).
        arch: The architecture read from the config.
        source_info: What :func:`read_hf_rtdetr` says about the folder.
    """

    state_dict: Dict[str, torch.Tensor]
    converted: List[Tuple[Tuple[str, ...], str]]
    filled: List[str]
    new: List[str]
    dropped: List[str]
    arch: HFRTDetrArch
    source_info: Dict[str, Any] = field(default_factory=dict)

    CONVERTED_FROM = 'transformers RTDetrForObjectDetection'
    KEY_LISTS = (('filled',
                  'filled (BN num_batches_tracked = 0, not in the weights)'),
                 ('new', 'new (left at init)'), ('dropped', 'dropped'))
    _part = staticmethod(_group)

    def _converted_note(self) -> str:
        hf_tensors = sum(len(keys) for keys, _ in self.converted)
        return f' from {hf_tensors} transformers tensors'

    def _model_meta(self) -> Dict[str, Any]:
        return dict(
            arch=f'r{self.arch.depth}vd', cfg_options=self.arch.cfg_options())


def _problem_list(problems: List[str]) -> str:
    more = len(problems) - _MAX_LISTED
    return '\n  '.join(problems[:_MAX_LISTED]) + (f'\n  ... and {more} more'
                                                  if more > 0 else '')


def convert_hf_rtdetr_state_dict(
        state: Mapping[str, torch.Tensor],
        arch: HFRTDetrArch,
        target: Mapping[str, torch.Tensor],
        new_class_heads: bool = False) -> HFConversionResult:
    """Rename, stack and check transformers RT-DETR weights against our
    model's state dict.

    Args:
        state: ``RTDetrForObjectDetection`` state dict (4.x or 5.x names).
        arch: :func:`arch_from_hf_config` of its config.
        target: Our model's ``state_dict()`` (names, shapes, dtypes).
        new_class_heads: Drop the weights' class layers and leave ours
            new (our model has other classes).

    Returns:
        The converted state dict and the converted / filled / new /
        dropped keys.

    Raises:
        WeightConversionError: naming, for each problem, the transformers
            key and shape and our key and shape: a key with no
            counterpart, a shape mismatch, or one of our keys the weights
            do not provide.
    """
    state = normalize_hf_keys(state)
    pairs = key_pairs(arch)
    to_ours = {hf: (ours, slot) for hf, ours, slot in pairs}
    to_hf: Dict[str, List[str]] = {}
    for hf, ours, slot in pairs:
        to_hf.setdefault(ours, []).append(hf)
    problems: List[str] = []
    parts: Dict[str, Dict[int, Tuple[str, torch.Tensor]]] = {}
    dropped: List[str] = []
    for key, value in state.items():
        theirs = f'transformers {key} {_shape(value)}'
        if new_class_heads and _HF_CLASS_KEYS.match(key):
            dropped.append(key)
            continue
        if key not in to_ours:
            problems.append(
                f'{theirs} maps to no key of ours: the layout read from '
                f'config.json ({arch.describe()}) has no such tensor')
            continue
        ours, slot = to_ours[key]
        if ours not in target:
            problems.append(f'{theirs} maps to our {ours}, which our model '
                            'does not have')
            continue
        want = list(_shape(target[ours]))
        if slot >= 0:
            want[0] //= len(_QKV)
        if tuple(want) != _shape(value):
            what = f'a third ({len(_QKV)} stacked) of our' if slot >= 0 \
                else 'our'
            problems.append(f'shape mismatch: {theirs} vs {what} {ours} '
                            f'{_shape(target[ours])}')
            continue
        parts.setdefault(ours, {})[slot] = (key, value)
    out: Dict[str, torch.Tensor] = {}
    converted: List[Tuple[Tuple[str, ...], str]] = []
    filled: List[str] = []
    new: List[str] = []
    for ours, value in target.items():
        got = parts.get(ours, {})
        expected = to_hf.get(ours, [])
        if expected and len(got) == len(expected):
            keys = tuple(got[s][0] for s in sorted(got))
            tensors = [got[s][1] for s in sorted(got)]
            tensor = tensors[0] if len(tensors) == 1 else torch.cat(tensors)
            out[ours] = tensor.detach().to(value.dtype).clone()
            converted.append((keys, ours))
        elif ours.endswith('num_batches_tracked'):
            out[ours] = torch.zeros_like(value)
            filled.append(ours)
        elif new_class_heads and _OUR_CLASS_KEYS.match(ours):
            new.append(ours)
        elif expected:
            missing = [k for k in expected if k not in state]
            if missing:
                problems.append(
                    f'our {ours} {_shape(value)} would come from '
                    f'transformers {", ".join(missing)}, which the weights '
                    'do not have')
        else:
            problems.append(f'our {ours} {_shape(value)} has no '
                            'transformers counterpart in this layout')
    if problems:
        raise WeightConversionError(
            f'{len(problems)} problem(s) converting {arch.describe()} '
            f'weights:\n  {_problem_list(problems)}\nThese weights fit the '
            f'model built with {format_cfg_options(arch.cfg_options())}')
    return HFConversionResult(out, converted, filled, new, dropped, arch)


# ---- reading a save_pretrained folder -------------------------------------
def _load_weights(directory: str) -> Tuple[Dict[str, torch.Tensor], str]:
    from safetensors.torch import load_file
    for index_name, loader in (('model.safetensors.index.json', load_file),
                               ('pytorch_model.bin.index.json', None)):
        index = osp.join(directory, index_name)
        if osp.isfile(index):
            with open(index) as f:
                shards = sorted(set(json.load(f)['weight_map'].values()))
            state: Dict[str, torch.Tensor] = {}
            for shard in shards:
                path = osp.join(directory, shard)
                state.update(
                    loader(path) if loader else torch.
                    load(path, map_location='cpu', weights_only=True))
            return state, f'{index_name} ({len(shards)} shards)'
    path = osp.join(directory, 'model.safetensors')
    if osp.isfile(path):
        return load_file(path), 'model.safetensors'
    path = osp.join(directory, 'pytorch_model.bin')
    if osp.isfile(path):
        return torch.load(
            path, map_location='cpu', weights_only=True), 'pytorch_model.bin'
    found = sorted(
        osp.basename(p) for p in glob.glob(osp.join(directory, '*')))
    raise FileNotFoundError(
        f'{directory}: no model.safetensors, pytorch_model.bin or a shard '
        f'index (found {found[:10]}); pass the folder save_pretrained wrote')


def read_hf_rtdetr(
        directory: str) -> Tuple[Dict[str, torch.Tensor], Any, Dict[str, Any]]:
    """Load a transformers ``RTDetrForObjectDetection`` folder (never
    downloads).

    Args:
        directory: A ``save_pretrained`` folder: ``config.json`` and
            ``model.safetensors`` (or ``pytorch_model.bin``, or shards with
            their index).

    Returns:
        ``(state dict in transformers 5 names, RTDetrConfig, info)``;
        ``info`` has ``weights_file`` and the class names ``classes``.

    Raises:
        FileNotFoundError: no config.json or weights file.
        WeightConversionError: the config is not an RT-DETR one.
    """
    config_path = osp.join(directory, 'config.json')
    if not osp.isfile(config_path):
        raise FileNotFoundError(f'{directory}: no config.json (expected a '
                                'transformers save_pretrained folder)')
    with open(config_path) as f:
        raw = json.load(f)
    if raw.get('model_type') != 'rt_detr':
        raise WeightConversionError(
            f"{config_path}: model_type {raw.get('model_type')!r}, not "
            "'rt_detr' (RT-DETRv2 and other variants are not converted)")
    from transformers import RTDetrConfig
    config = RTDetrConfig.from_pretrained(directory)
    state, weights_file = _load_weights(directory)
    id2label = {int(k): v for k, v in (config.id2label or {}).items()}
    info = dict(
        weights_file=weights_file,
        classes=[id2label.get(i, str(i)) for i in range(config.num_labels)])
    return normalize_hf_keys(state), config, info
