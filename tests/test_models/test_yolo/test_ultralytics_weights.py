"""ultralytics YOLOv8 weights in PSALM YOLO, checked against ultralytics.

The oracle is ultralytics' own ``DetectionModel`` built from the YAML in its
package (``yolov8.yaml``, ``yolov8-p2.yaml``), randomly initialized, with
BatchNorm statistics and affine parameters made non-trivial. Its weights
are converted and loaded into our model built from our configs; then, on
the same input, the backbone levels, the neck outputs and the decoded boxes
must equal ultralytics' (to 1e-5, in float64 so that the tolerance is far
above rounding and far below any wrong mapping: in float32 the boxes,
pixel coordinates up to 256, differ by ~6e-5, a few float32 steps).
"""
import copy
import os.path as osp

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import init_default_scope

from engine_plugins.engine.checkpoints import KeyMatch
from engine_plugins.models.yolo import ultralytics_weights as uw
from engine_plugins.registry import MODELS
from tests.reference_ultralytics import import_ultralytics

REPO = osp.dirname(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
CONFIGS = osp.join(REPO, 'configs', 'psalm_yolo')
TOL = 1e-5


def _size_options(scale: str) -> dict:
    deepen, widen, max_channels = uw.ULTRALYTICS_SCALES[scale]
    return {
        'model.backbone.deepen_factor': deepen,
        'model.backbone.widen_factor': widen,
        'model.backbone.max_channels': max_channels,
    }


# Per checked (scale, layout): ultralytics' YAML and scale, our config and
# overrides, the input size. m (max_channels 768, 2-block neck C2f), l and
# x (the last stage capped at 512 * width) have no config of their own and
# run at 64 px to stay cheap.
CASES = {
    'n-P3P5': ('yolov8.yaml', 'n', 'psalm_yolo_n_p3-p5_coco.py', None, 256),
    'n-P2P5': ('yolov8-p2.yaml', 'n', 'psalm_yolo_n_coco.py', None, 256),
    's-P2P5': ('yolov8-p2.yaml', 's', 'psalm_yolo_s_coco.py', None, 256),
    **{
        f'{scale}-P3P5': ('yolov8.yaml', scale, 'psalm_yolo_n_p3-p5_coco.py',
                          _size_options(scale), 64)
        for scale in 'mlx'
    },
}


@pytest.fixture(scope='module')
def tasks():
    modules = import_ultralytics('ultralytics.nn.tasks')
    if modules is None:
        pytest.skip('ultralytics (optional oracle) is not installed')
    return modules[0]


def ultralytics_yaml(tasks, name: str, scale: str) -> dict:
    import yaml
    folder = osp.join(
        osp.dirname(osp.dirname(tasks.__file__)), 'cfg', 'models', 'v8')
    with open(osp.join(folder, name)) as f:
        cfg = yaml.safe_load(f)
    cfg['scale'] = scale
    return cfg


def _statistics_hook(gen: torch.Generator):
    """A forward pre-hook that sets a BatchNorm's running statistics to
    those of the input it gets, shifted by 0.2 standard deviations and
    scaled by 0.7-1.4 at random per channel. Set in forward order, so
    that each layer is measured behind the already perturbed ones."""

    def hook(norm: nn.BatchNorm2d, args) -> None:
        var, mean = torch.var_mean(args[0], dim=(0, 2, 3), correction=0)
        shift = torch.randn(mean.shape, generator=gen, dtype=mean.dtype)
        scale = torch.empty(
            var.shape, dtype=var.dtype).uniform_(
                0.7, 1.4, generator=gen)
        norm.running_mean.copy_(mean + 0.2 * var.sqrt() * shift)
        norm.running_var.copy_(var * scale)

    return hook


def ultralytics_model(tasks,
                      name: str,
                      scale: str,
                      images: torch.Tensor,
                      seed: int = 0):
    """A randomly initialized DetectionModel whose BatchNorms are far from
    the identity yet keep activations near unit scale (so that the DFL
    distributions stay soft): random affine parameters, random box-output
    biases, and running statistics measured on ``images`` in eval mode and
    perturbed (:func:`_statistics_hook`; train-mode batch statistics drift
    from what eval mode sees, badly on the 2x2 maps of a 64 px input)."""
    torch.manual_seed(seed)
    model = tasks.DetectionModel(
        ultralytics_yaml(tasks, name, scale), verbose=False).eval()
    gen = torch.Generator().manual_seed(seed + 1)
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        for norm in norms:
            norm.weight.uniform_(0.5, 1.5, generator=gen)
            norm.bias.normal_(0.0, 0.2, generator=gen)
        for branch in model.model[-1].cv2:
            branch[-1].bias.normal_(0.0, 1.0, generator=gen)
        hook = _statistics_hook(gen)
        handles = [norm.register_forward_pre_hook(hook) for norm in norms]
        model(images)
        for handle in handles:
            handle.remove()
    return model


def our_model(config: str, cfg_options=None):
    cfg = Config.fromfile(osp.join(CONFIGS, config))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope('engine_plugins')
    return MODELS.build(cfg.model).eval()


def converted(ultra, ours):
    result = uw.convert_ultralytics_state_dict(ultra.state_dict(),
                                               ours.state_dict())
    # What SafeCheckpointHook checks on load_from: exactly PSALM's class
    # side would keep its initial values.
    match = KeyMatch(result.state_dict, ours.state_dict())
    assert not match.unexpected and not match.shape_mismatch
    assert match.missing == result.new
    ours.load_state_dict(result.state_dict, strict=False)
    return result


def reference_outputs(ultra, x):
    """ultralytics' backbone levels, neck outputs (the inputs of Detect)
    and decoded boxes (xyxy pixels, ``(B, A, 4)``), read with forward hooks
    on the layers its routing (``m.f``) names."""
    layers = list(ultra.model)
    detect = layers[-1]
    first_head = len(ultra.yaml['backbone'])
    skips = {
        j
        for m in layers
        for j in (m.f if isinstance(m.f, list) else [m.f])
        if 0 <= j < first_head
    }
    # The backbone levels: those the head concatenates, and the last
    # backbone layer (SPPF, P5).
    backbone_ids = sorted(skips | {first_head - 1})
    seen = {}
    handles = [
        layers[i].register_forward_hook(
            lambda m, args, out, i=i: seen.__setitem__(i, out.clone()))
        for i in set(backbone_ids) | set(detect.f)
    ]
    try:
        y, _ = ultra(x)
    finally:
        for handle in handles:
            handle.remove()
    centre, size = y[:, :2].transpose(1, 2), y[:, 2:4].transpose(1, 2)
    boxes = torch.cat([centre - size / 2, centre + size / 2], -1)
    return ([seen[i] for i in backbone_ids], [seen[i]
                                              for i in detect.f], boxes)


def our_outputs(model, x):
    """Our backbone levels, neck outputs and decoded boxes (the box branch
    on the neck outputs)."""
    feats = model.backbone(x)
    neck = model.neck(feats)
    head = model.bbox_head
    box_maps = [branch(f) for branch, f in zip(head.box_branches, neck)]
    return list(feats), list(neck), head.decode_boxes(box_maps)


def max_diff(ours, theirs) -> float:
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape
    return max(float((a - b).abs().max()) for a, b in zip(ours, theirs))


def compare(tasks, name, scale, config, cfg_options, size_px, seed=0):
    """Max abs differences of ours from ultralytics per check, and the
    conversion result."""
    gen = torch.Generator().manual_seed(seed + 2)
    images = torch.rand(2, 3, size_px, size_px, generator=gen)
    # BN statistics from the test image and another one.
    ultra = ultralytics_model(tasks, name, scale, images, seed)
    ours = our_model(config, cfg_options)
    result = converted(ultra, ours)
    ultra.double()
    ours.double()
    x = images[:1].double()
    with torch.no_grad():
        ref = reference_outputs(ultra, x)
        feats, neck, boxes = our_outputs(ours, x)
        # The whole detector, with PSALM's feature gate saturated open
        # (sigmoid(60 + cos) is exactly 1.0 in float64): its box branch
        # then sees the neck outputs, as ultralytics' does. At its initial
        # gate (about 0.5) the boxes differ: the fusion is PSALM's own.
        ours.fusion.gate_bias.data.fill_(60.0)
        _, full_maps = ours._forward(x)
        full = ours.bbox_head.decode_boxes(full_maps)
    diffs = dict(
        backbone=max_diff(feats, ref[0]),
        neck=max_diff(neck, ref[1]),
        boxes=max_diff([boxes], [ref[2]]),
        full_model_boxes=max_diff([full], [ref[2]]))
    # The checks mean something: ultralytics' features vary at unit scale,
    # its DFL distributions are soft (a saturated softmax would hide wrong
    # logits), its boxes spread over the image.
    assert all(0.1 < float(f.std()) < 100 for f in ref[0] + ref[1]), \
        [float(f.std()) for f in ref[0] + ref[1]]
    with torch.no_grad():
        peak = max(
            float(branch(f).unflatten(1, (4, -1)).softmax(2).amax(2).mean())
            for branch, f in zip(ultra.model[-1].cv2, ref[1]))
    assert peak < 0.9, peak
    assert float(ref[2].std()) > size_px / 10
    return diffs, result


@pytest.mark.parametrize('case', list(CASES))
def test_outputs_equal_ultralytics(tasks, case):
    diffs, result = compare(tasks, *CASES[case])
    print(f'{case}: max abs differences {diffs}')  # pytest -s shows them
    assert max(diffs.values()) < TOL, diffs
    # Per level: 14 box-branch tensors (two Conv+BN of 6, a Conv2d of 2)
    # and as many class-branch ones; each neck step is 54 at depth 0.33
    # (a top-down C2f, a stride-2 Conv, a bottom-up C2f); the fusion has
    # 9 tensors plus a projection (2) per level.
    levels = 4 if 'P2' in case else 3
    detect = f'model.{10 + 6 * (levels - 1)}'
    counts = result.counts()
    if case[0] in 'ns':
        assert counts['converted']['backbone'] == 162
        assert counts['converted']['neck'] == 54 * (levels - 1)
    assert counts['converted']['bbox_head.box_branches'] == 14 * levels
    assert counts['new'] == {
        'fusion': 2 * levels + 9,
        'bbox_head.logit_*': 2,
        'bbox_head.proto_branches': 14 * levels
    }
    assert counts['dropped'] == {
        f'{detect}.cv3': 14 * levels,
        f'{detect}.dfl': 1
    }


def test_a_wrong_mapping_is_caught(tasks, monkeypatch):
    """Swapping the two 3x3 convs of every bottleneck (same shapes, so
    only the outputs can tell) must break the backbone comparison."""
    names, leaves = uw._INNER['c2f']
    swapped = tuple((theirs, ours.replace('conv1', 'convX').replace(
        'conv2', 'conv1').replace('convX', 'conv2')) for theirs, ours in names)
    monkeypatch.setitem(uw._INNER, 'c2f', (swapped, leaves))
    name, scale, config, options, _ = CASES['n-P3P5']
    diffs, _ = compare(tasks, name, scale, config, options, size_px=64)
    assert diffs['backbone'] > 1e-3


@pytest.mark.parametrize('yaml_name,levels', [('yolov8.yaml', 3),
                                              ('yolov8-p2.yaml', 4)])
@pytest.mark.parametrize('scale', list(uw.ULTRALYTICS_SCALES))
def test_every_size_is_inferred_and_maps(tasks, yaml_name, levels, scale):
    """Shapes only (meta tensors, no compute): each scale and layout is
    recognized, its config values build a model whose every backbone,
    neck and box-branch tensor comes from ultralytics with its shape."""
    with torch.device('meta'):
        layers, _ = tasks.parse_model(
            copy.deepcopy(ultralytics_yaml(tasks, yaml_name, scale)),
            ch=3,
            verbose=False)
    state = {f'model.{k}': v for k, v in layers.state_dict().items()}
    # The DFL bins are checked by value, which meta tensors do not have.
    dfl = f'model.{10 + 6 * (levels - 1)}.dfl.conv.weight'
    state[dfl] = torch.arange(16.0).view(1, 16, 1, 1)
    size = uw.infer_yolov8_size(state)
    assert size.name == scale
    assert len(size.out_indices) == levels
    assert (size.deepen_factor, size.widen_factor,
            size.max_channels) == uw.ULTRALYTICS_SCALES[scale]
    init_default_scope('engine_plugins')
    with torch.device('meta'):
        ours = MODELS.build(size.model_cfg())
    result = uw.convert_ultralytics_state_dict(state, ours.state_dict())
    assert len(result.converted) + len(result.dropped) == len(state)
    assert len(result.converted) + len(result.new) == len(ours.state_dict())
    assert set(result.counts()['new']) == {
        'fusion', 'bbox_head.proto_branches', 'bbox_head.logit_*'
    }


@pytest.mark.parametrize('factors,expected', [
    ((0.5, 0.375, 1024), (0.5, 0.375, 1024)),
    ((0.4, 0.375, 1024), (0.3333, 0.375, 1024)),
    ((1.0, 1.0, 640), (1.0, 1.0, 640)),
])
def test_a_custom_scale_is_inferred(tasks, factors, expected):
    """A scale outside n-x: the width, the channel cap and a depth that
    builds the same blocks (0.4 builds what 1/3 does) are recovered from
    the shapes."""
    cfg = ultralytics_yaml(tasks, 'yolov8.yaml', 'c')
    cfg['scales']['c'] = list(factors)
    with torch.device('meta'):
        layers, _ = tasks.parse_model(cfg, ch=3, verbose=False)
    state = {f'model.{k}': v for k, v in layers.state_dict().items()}
    size = uw.infer_yolov8_size(state)
    assert size.name is None
    assert (size.deepen_factor, size.widen_factor,
            size.max_channels) == expected
    init_default_scope('engine_plugins')
    with torch.device('meta'):
        ours = MODELS.build(size.model_cfg())
    shapes = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    assert shapes['backbone.stages.3.0.conv.weight'] == tuple(
        state['model.7.conv.weight'].shape)
    assert shapes['neck.top_down.1.blocks.0.conv1.conv.weight'] == tuple(
        state['model.12.m.0.cv1.conv.weight'].shape)


def test_config_overrides_name_what_differs():
    size = uw.YOLOv8Size(0.33, 0.5, 1024, (2, 3, 4), 16, 80, 's')
    n_p2 = Config.fromfile(osp.join(CONFIGS, 'psalm_yolo_n_coco.py')).model
    assert uw.config_overrides(size, n_p2) == {
        'model.backbone.deepen_factor': 0.33,
        'model.backbone.widen_factor': 0.5,
        'model.backbone.max_channels': 1024,
        'model.backbone.out_indices': (2, 3, 4),
    }
    s_p2 = Config.fromfile(osp.join(CONFIGS, 'psalm_yolo_s_coco.py')).model
    assert uw.config_overrides(size, s_p2) == {
        'model.backbone.out_indices': (2, 3, 4)
    }
    # 0.3 builds the same blocks as 0.33: nothing to override.
    s_p2.backbone.deepen_factor = 0.3
    s_p2.backbone.out_indices = (4, 2, 3)
    assert uw.config_overrides(size, s_p2) == {}
    assert uw.format_cfg_options(size.cfg_options()) == (
        'model.backbone.deepen_factor=0.33 model.backbone.widen_factor=0.5 '
        'model.backbone.max_channels=1024 '
        'model.backbone.out_indices="(2,3,4)" model.bbox_head.reg_max=16')


@pytest.fixture(scope='module')
def n_weights(tasks):
    torch.manual_seed(0)
    model = tasks.DetectionModel(
        ultralytics_yaml(tasks, 'yolov8.yaml', 'n'), verbose=False)
    return model.state_dict()


@pytest.fixture(scope='module')
def n_target():
    return our_model('psalm_yolo_n_p3-p5_coco.py').state_dict()


def _error(state, target) -> str:
    with pytest.raises(uw.WeightConversionError) as info:
        uw.convert_ultralytics_state_dict(state, target)
    return str(info.value)


def test_a_shape_mismatch_names_both_keys(n_weights):
    p2_target = our_model('psalm_yolo_n_coco.py').state_dict()
    state = dict(n_weights)
    # P3-P5 weights into a P2-P5 model: the layouts differ at layer 12 on.
    message = _error(state, p2_target)
    assert 'shape mismatch: ultralytics model.12.cv1.conv.weight ' \
        '(128, 384, 1, 1) vs our neck.top_down.1.main_conv.conv.weight ' \
        '(64, 192, 1, 1)' in message
    assert 'model.backbone.out_indices="(2,3,4)"' in message


def test_an_unmapped_key_names_both_sides(n_weights, n_target):
    state = dict(n_weights)
    state['model.9.cv3.conv.weight'] = torch.zeros(256, 512, 1, 1)
    message = _error(state, n_target)
    assert ('ultralytics model.9.cv3.conv.weight (256, 512, 1, 1) maps to '
            'no key of ours: model.9 is a SPPF (backbone.stages.3.2 on the '
            "other side), which has no 'cv3.conv.weight'") in message


def test_a_missing_source_tensor_names_both_keys(n_weights, n_target):
    state = dict(n_weights)
    del state['model.4.m.1.cv2.bn.running_var']
    message = _error(state, n_target)
    assert ('our backbone.stages.1.1.blocks.1.conv2.bn.running_var (32,) '
            'would come from ultralytics model.4.m.1.cv2.bn.running_var, '
            'which the weights do not have') in message


def test_an_extra_target_key_is_an_error(n_weights, n_target):
    target = dict(n_target)
    target['backbone.extra.weight'] = torch.zeros(3)
    message = _error(dict(n_weights), target)
    assert 'our backbone.extra.weight (3,) has no ultralytics counterpart' \
        in message


def test_a_layout_we_do_not_have_is_refused(n_weights, n_target):
    state = {
        k.replace('model.22.', 'model.25.'): v
        for k, v in n_weights.items()
    }
    message = _error(state, n_target)
    assert 'last layer 25 with 3 box branches' in message
    assert 'yolov8-p6' in message


def test_dfl_bins_other_than_0_to_15_are_refused(n_weights, n_target):
    state = dict(n_weights)
    state['model.22.dfl.conv.weight'] = state['model.22.dfl.conv.weight'] * 2
    assert 'is not the fixed bins 0..15' in _error(state, n_target)


def test_keys_without_the_model_prefix_are_accepted(tmp_path, n_weights):
    bare = {k[len('model.'):]: v for k, v in n_weights.items()}
    torch.save(bare, tmp_path / 'bare.pth')
    state, info = uw.read_ultralytics_weights(str(tmp_path / 'bare.pth'))
    assert info == {'format': 'state dict'}
    assert list(state) == list(n_weights)
