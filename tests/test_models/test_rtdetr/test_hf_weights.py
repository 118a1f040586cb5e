"""transformers RT-DETR weights in our RT-DETR, checked against transformers.

The oracle is transformers' own ``RTDetrForObjectDetection`` built from an
``RTDetrConfig`` (no download), every parameter random (the library's init
leaves box deltas, sampling-offset and attention weights at 0, which would
hide a wrong mapping of those) and every BN's statistics set from its
input, saved with ``save_pretrained`` (the 4.x key names the hub
checkpoints have), converted and loaded into our model built from our
config with the printed overrides. On the same input, in eval mode, the
backbone levels, the encoder memory (hybrid encoder outputs), the encoder
class scores and top-k selection, the decoder's final logits and boxes and
the post-processed detections (``RTDETR.decode`` vs
``post_process_object_detection``) must equal transformers':

* in float64 to TOL64 = 1e-8 (measured ~1e-12: the same function), far
  below the 1e-4 asked for; wrong mappings tried (q/k swapped, norms or
  class / box heads permuted) differ by 1 or more;
* in float32 to within what transformers' own float32 run differs from its
  float64 run (these random deep networks amplify rounding to ~2e-5 of the
  feature magnitude for R18, ~2e-4 for R50; ours and transformers' float32
  outputs differ by the same amount), boxes to 1e-4.
"""
import copy
import os.path as osp

import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.registry import init_default_scope

from engine_plugins.models.rtdetr import hf_weights as hw
from engine_plugins.models.rtdetr.query_selection import grid_anchors
from engine_plugins.models.rtdetr.rtdetr_layers import sincos_pos_embed_2d
from engine_plugins.registry import MODELS

transformers = pytest.importorskip('transformers')

REPO = osp.dirname(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
BASE_MODEL = osp.join(REPO, 'configs', 'rtdetr', 'rtdetr_r50_model.py')
R18_COCO = osp.join(REPO, 'configs', 'rtdetr', 'rtdetr_r18_coco.py')
TOL = 1e-4
# float64 comparisons: rounding is ~1e-12 there
TOL64 = 1e-8
NUM_CLASSES = 7


def r18vd_config(**overrides):
    """transformers' rtdetr_r18vd layout, with fewer queries (100)."""
    backbone = transformers.RTDetrResNetConfig(
        depths=[2, 2, 2, 2],
        layer_type='basic',
        hidden_sizes=[64, 128, 256, 512],
        out_indices=[2, 3, 4])
    kwargs = dict(
        backbone_config=backbone,
        encoder_in_channels=[128, 256, 512],
        hidden_expansion=0.5,
        decoder_layers=3,
        num_queries=100,
        num_labels=NUM_CLASSES)
    kwargs.update(overrides)
    return transformers.RTDetrConfig(**kwargs)


def r50vd_config():
    """ResNet-50-vd (bottleneck, full depth) with rtdetr_r101vd's widths
    (encoder 384 wide, FFN 2048, decoder 256: the decoder projects 384 to
    256), 2 decoder layers, 100 queries."""
    return transformers.RTDetrConfig(
        backbone_config=transformers.RTDetrResNetConfig(out_indices=[2, 3, 4]),
        encoder_hidden_dim=384,
        encoder_ffn_dim=2048,
        decoder_in_channels=[384, 384, 384],
        decoder_layers=2,
        num_queries=100,
        num_labels=NUM_CLASSES)


def randomize(model: torch.nn.Module, seed: int = 0) -> None:
    """Every float tensor random: weights ~ N(0, 1/fan_in), biases
    N(0, 0.2), norm scales U(0.5, 1.5); then every BN's statistics set to
    those of its input on an image, shifted by 0.2 standard deviations and
    scaled by U(0.7, 1.4) per channel (so features keep their spatial
    variation through the depth instead of decaying to the BN biases).
    The query-selection class head is scaled up (x10) so that its top-k
    choice is separated by far more than float32 rounding."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point():
                continue
            if t.dim() == 1 and name.endswith('weight') and 'norm' in name:
                new = torch.rand(t.shape, generator=gen) + 0.5
            elif t.dim() == 1:  # biases (BN statistics follow below)
                new = torch.randn(t.shape, generator=gen) * 0.2
            else:
                new = torch.randn(t.shape, generator=gen) / t[0].numel()**0.5
            t.copy_(new)
        model.model.enc_score_head.weight.mul_(10)

    def set_statistics(module, args):
        x = args[0].transpose(0, 1).flatten(1)
        mean, std = x.mean(1), x.std(1)
        module.running_mean.copy_(mean + 0.2 * std *
                                  torch.randn(mean.shape, generator=gen))
        module.running_var.copy_(
            std**2 * (torch.rand(std.shape, generator=gen) * 0.7 + 0.7))

    norms = [
        m for m in model.modules()
        if 'BatchNorm' in type(m).__name__ and hasattr(m, 'running_var')
    ]
    handles = [m.register_forward_pre_hook(set_statistics) for m in norms]
    model.eval()
    with torch.no_grad():
        model(pixel_values=image_batch(1, 256, 256, seed=seed + 7) / 255.0)
    for handle in handles:
        handle.remove()


def hf_model(config) -> torch.nn.Module:
    torch.manual_seed(0)
    model = transformers.RTDetrForObjectDetection(config)
    randomize(model)
    return model.eval()


@pytest.fixture(scope='module')
def r18_folder(tmp_path_factory):
    """A save_pretrained folder of a random r18vd, and the model."""
    model = hf_model(r18vd_config())
    folder = str(tmp_path_factory.mktemp('hf') / 'rtdetr_r18vd')
    model.save_pretrained(folder)
    return folder, model


def convert(folder: str, base: str = BASE_MODEL):
    """Read, convert and load into our model built from ``base`` with the
    overrides of the weights; returns (our model in eval, result)."""
    state, config, _ = hw.read_hf_rtdetr(folder)
    arch = hw.arch_from_hf_config(config)
    init_default_scope('engine_plugins')
    cfg = hw.default_model_cfg(arch, base)
    ours = MODELS.build(cfg.model)
    result = hw.convert_hf_rtdetr_state_dict(state, arch, ours.state_dict())
    ours.load_state_dict(result.state_dict, strict=True)
    return ours.eval(), result


def image_batch(batch: int,
                height: int,
                width: int,
                seed: int = 1) -> torch.Tensor:
    """RGB uint8 images: smooth random blobs plus pixel noise."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand((batch, 3, height // 32, width // 32), generator=gen)
    smooth = torch.nn.functional.interpolate(
        coarse, size=(height, width), mode='bilinear', align_corners=False)
    noise = torch.rand((batch, 3, height, width), generator=gen)
    return (200 * smooth + 55 * noise).to(torch.uint8)


R18_IMAGE = image_batch(2, 320, 448)


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return float((a.double() - b.double()).abs().max())


def run_both(hf, ours, image: torch.Tensor, dtype: torch.dtype) -> dict:
    """Run copies of both models in ``dtype`` on an RGB uint8 batch
    ``(B, 3, H, W)`` scaled to [0, 1] (what transformers' image processor
    gives; ours gets the same from its data preprocessor, checked here).

    Returns:
        ``pairs``: name -> (transformers', ours) of every checked output
        (decoder outputs aligned by selected memory position), ``outputs``
        (transformers'), ``batch`` (the input), ``ours`` (our copy) and
        ``decoded`` (its decoder outputs).
    """
    # a pipeline gives our preprocessor BGR uint8; it flips and scales
    preprocessed = ours.data_preprocessor(
        dict(inputs=[img.flip(0) for img in image]), False)['inputs']
    assert torch.equal(preprocessed, image.float() / 255.0)
    hf, ours = copy.deepcopy(hf).to(dtype), copy.deepcopy(ours).to(dtype)
    batch = image.to(dtype) / 255.0
    with torch.no_grad():
        out = hf(pixel_values=batch)
        hf_levels = [
            f
            for f, _ in hf.model.backbone(batch, torch.ones_like(batch[:, 0]))
        ]
        levels = ours.backbone(batch)
        memory = ours.encoder(levels)
        flat, shapes, _, _ = ours.decoder._flatten(memory)
        selection = ours.decoder.query_selection
        _, valid = grid_anchors(shapes, flat.device, dtype=dtype)
        enc_scores = selection.score_head(
            selection.memory_proj(flat * valid.to(dtype)))
        decoded = ours.decoder(memory)
    pairs = {}
    for i, (theirs, mine) in enumerate(zip(hf_levels, levels)):
        pairs[f'backbone[{i}]'] = (theirs, mine)
    for i, (theirs,
            mine) in enumerate(zip(out.encoder_last_hidden_state, memory)):
        pairs[f'encoder memory[{i}]'] = (theirs, mine)
    pairs['encoder class scores'] = (out.enc_outputs_class, enc_scores)
    # The same memory positions must be selected. Their order may differ
    # where two scores are closer than the implementations' rounding; the
    # decoder treats queries alike whatever their order, so ours are
    # aligned to transformers' order.
    k = hf.config.num_queries
    best = out.enc_outputs_class.max(-1).values.topk(k + 1, dim=1)
    margin = float((best.values[:, k - 1] - best.values[:, k]).min())
    error = max_diff(*pairs['encoder class scores'])
    assert margin > 4 * error, (
        f'the top-k boundary gap {margin:.3g} is not > 4x the encoder '
        f'class score difference {error:.3g} (if that is large the '
        'outputs differ; if small, the test data have near ties)')
    theirs_idx = best.indices[:, :k]
    mine_idx = enc_scores.max(-1).values.topk(k, dim=1).indices
    assert torch.equal(theirs_idx.sort(1).values, mine_idx.sort(1).values), \
        'query selection picked other memory positions'
    order = (mine_idx[:, None, :] == theirs_idx[:, :, None]).float().argmax(-1)

    def aligned(x):
        return x.gather(1, order[..., None].expand(-1, -1, x.shape[-1]))

    pairs['selected boxes'] = (out.enc_topk_bboxes, aligned(decoded.enc_boxes))
    pairs['final logits'] = (out.logits, aligned(decoded.logits[-1]))
    pairs['final boxes'] = (out.pred_boxes, aligned(decoded.boxes[-1]))
    return dict(
        pairs=pairs, outputs=out, batch=batch, ours=ours, decoded=decoded)


def assert_close_pairs(pairs: dict, tol: float, relative: bool) -> dict:
    """Max abs differences of ``pairs``, asserted below ``tol`` (times the
    output's largest magnitude if ``relative``)."""
    diffs = {}
    for name, (theirs, mine) in pairs.items():
        diffs[name] = max_diff(theirs, mine)
        bound = tol * float(theirs.abs().max()) if relative else tol
        assert diffs[name] < bound, \
            f'{name}: max abs difference {diffs[name]:.3g} >= {bound:.3g}'
    return diffs


def assert_same_detections(mine, theirs: dict, score_tol: float,
                           box_tol: float) -> None:
    """Same ranked scores, and each detection of ours has one of
    transformers' with the same label, a score within ``score_tol`` and a
    box within ``box_tol`` (and back): detections whose scores differ by
    less than the implementations' rounding may be ranked either way."""
    assert len(mine.scores) == len(theirs['scores'])
    assert max_diff(mine.scores, theirs['scores']) < score_tol
    near = (mine.scores[:, None].double() -
            theirs['scores'][None].double()).abs() < score_tol
    same_label = mine.labels[:, None] == theirs['labels'][None]
    box_diff = (mine.bboxes[:, None].double() -
                theirs['boxes'][None].double()).abs().amax(-1)
    match = near & same_label & (box_diff < box_tol)
    assert bool(match.any(1).all()) and bool(match.any(0).all()), \
        f'{int((~match.any(1)).sum())} detections have no counterpart'
    assert float(match.diagonal().float().mean()) > 0.9  # mostly same rank


def check_detections(result: dict, image_hw, score_tol: float,
                     box_tol: float) -> None:
    """Our post-processing (``RTDETR.decode``, what ``predict`` runs on the
    decoder outputs: in the input frame, and rescaled to a 480 x 640
    original) against transformers' ``post_process_object_detection``
    (threshold 0: its top num_queries (query, class) pairs). Ours clips
    rescaled boxes to the image; transformers does not, so its boxes are
    clipped here. Our scores and boxes are float32 (``decode`` casts).
    ``box_tol`` is in pixels."""
    out, ours, batch = result['outputs'], result['ours'], result['batch']
    processor_cls = getattr(transformers, 'RTDetrImageProcessorPil', None) \
        or transformers.RTDetrImageProcessor
    processor = processor_cls()
    ori_shape = (480, 640)
    h, w = image_hw
    samples = []
    for _ in range(len(batch)):
        sample = DetDataSample()
        sample.set_metainfo(
            dict(
                img_shape=image_hw,
                ori_shape=ori_shape,
                batch_input_shape=image_hw,
                scale_factor=(w / ori_shape[1], h / ori_shape[0])))
        samples.append(sample)
    # RTDETR.predict = decoder forward + decode; the forward was run
    logits, boxes = result['decoded'].logits[-1], result['decoded'].boxes[-1]
    in_frame = ours.decode(logits, boxes, image_hw, samples, False)
    rescaled = ours.decode(logits, boxes, image_hw, samples, True)
    k = out.logits.shape[1]
    scores = out.logits.sigmoid().flatten(1).sort(1, True).values
    assert float((scores[:, k - 1] - scores[:, k]).min()) > 2 * score_tol, \
        'test data: the k-th and (k+1)-th detection scores are too close'
    theirs_frame = processor.post_process_object_detection(
        out, threshold=0.0, target_sizes=[image_hw] * len(batch))
    theirs_ori = processor.post_process_object_detection(
        out, threshold=0.0, target_sizes=[ori_shape] * len(batch))
    for b in range(len(batch)):
        assert len(in_frame[b].scores) == k
        assert_same_detections(in_frame[b], theirs_frame[b], score_tol,
                               box_tol)
        clipped = theirs_ori[b]['boxes'].clone()
        clipped[:, 0::2] = clipped[:, 0::2].clamp(0, ori_shape[1])
        clipped[:, 1::2] = clipped[:, 1::2].clamp(0, ori_shape[0])
        assert_same_detections(rescaled[b], dict(theirs_ori[b], boxes=clipped),
                               score_tol, box_tol)


def test_r18vd_layout_converts_every_tensor(r18_folder):
    folder, hf = r18_folder
    ours, result = convert(folder)
    hf_keys = hw.normalize_hf_keys(hf.state_dict())
    used = [k for keys, _ in result.converted for k in keys]
    assert sorted(used) == sorted(hf_keys)  # each exactly once
    assert not result.new and not result.dropped
    # transformers' frozen backbone BN keeps no num_batches_tracked
    assert result.filled and all(
        k.startswith('backbone.') and k.endswith('num_batches_tracked')
        for k in result.filled)
    assert sorted(result.state_dict) == sorted(ours.state_dict())
    summary = result.summary()
    assert summary.splitlines()[0].startswith(
        f'converted: {len(result.converted)} from {len(used)} transformers '
        'tensors (backbone ')
    assert 'dropped: 0' in summary
    # in-memory 5.x names convert to the same tensors as the saved 4.x ones
    again = hw.convert_hf_rtdetr_state_dict(hf.state_dict(), result.arch,
                                            ours.state_dict())
    for key, value in result.state_dict.items():
        assert torch.equal(value, again.state_dict[key]), key


@pytest.fixture(scope='module')
def r18_float64(r18_folder):
    """Our converted r18vd and the float64 run of both on a batch of 2,
    non-square 320 x 448: level 0 is 40 x 56, so the anchors of the outer
    columns (centre < 0.01 from the edge) are invalid on both sides; the
    position embedding is checked on a non-square map (10 x 14)."""
    folder, hf = r18_folder
    ours, _ = convert(folder)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield ours, run_both(hf, ours, R18_IMAGE, torch.float64)
    finally:
        torch.set_num_threads(threads)


def test_r18vd_outputs_equal_transformers(r18_float64):
    """float64, so that rounding (~1e-12) is far below TOL64 and a wrong
    mapping far above."""
    _, result = r18_float64
    assert_close_pairs(result['pairs'], TOL64, relative=False)
    # our boxes are float32 pixels: 3e-5 / 6e-5 steps at 448 / 640
    check_detections(result, (320, 448), score_tol=1e-6, box_tol=2e-4)


def assert_float32_rounding_only(hf, ours, image: torch.Tensor,
                                 run64: dict) -> dict:
    """In float32 ours may differ from transformers by as much as
    transformers' own float32 run differs from its float64 run
    (``run64``; random weights make these deep networks amplify rounding:
    up to ~2e-4 of the feature magnitude in a ResNet-50), and no more (3x,
    plus 1e-6). Boxes in [0, 1] also within TOL absolute. Returns the
    differences."""
    run32 = run_both(hf, ours, image, torch.float32)
    diffs = {}
    for name, (theirs, mine) in run32['pairs'].items():
        own = max_diff(theirs, run64['pairs'][name][0])
        diffs[name] = max_diff(theirs, mine)
        assert diffs[name] <= 3 * own + 1e-6, \
            f'{name}: {diffs[name]:.3g} vs transformers\' own {own:.3g}'
        if 'boxes' in name:
            assert diffs[name] < TOL, name
    # TOL in normalized coordinates is TOL * 640 pixels
    check_detections(
        run32, tuple(image.shape[-2:]), score_tol=TOL, box_tol=TOL * 640)
    return diffs


def test_r18vd_float32_outputs_match_transformers(r18_folder, r18_float64,
                                                  one_torch_thread):
    ours, run64 = r18_float64
    assert_float32_rounding_only(r18_folder[1], ours, R18_IMAGE, run64)


def test_r50vd_bottleneck_outputs_equal_transformers(tmp_path,
                                                     one_torch_thread):
    """Bottleneck blocks (stride on the 3x3 conv, average-pool shortcut),
    encoder width 384 != decoder width 256, CSP expansion 1.0 (no conv3);
    float64, then float32."""
    hf = hf_model(r50vd_config())
    hf.save_pretrained(str(tmp_path / 'r50'))
    ours, result = convert(str(tmp_path / 'r50'))
    assert result.arch.depth == 50 and result.arch.style == 'pytorch'
    image = image_batch(1, 256, 256)
    result = run_both(hf, ours, image, torch.float64)
    assert_close_pairs(result['pairs'], TOL64, relative=False)
    check_detections(result, (256, 256), score_tol=1e-6, box_tol=2e-4)
    assert_float32_rounding_only(hf, ours, image, result)


def test_each_option_is_needed(r18_folder, one_torch_thread):
    """Without pe_order='hw' the encoder memory differs from transformers';
    without first_block_projection the conversion is refused, naming both
    sides."""
    folder, hf = r18_folder
    state, config, _ = hw.read_hf_rtdetr(folder)
    arch = hw.arch_from_hf_config(config)
    init_default_scope('engine_plugins')
    cfg = hw.default_model_cfg(arch, BASE_MODEL)
    cfg.merge_from_dict({'model.encoder.pe_order': 'wh'})
    ours = MODELS.build(cfg.model)
    result = hw.convert_hf_rtdetr_state_dict(state, arch, ours.state_dict())
    ours.load_state_dict(result.state_dict)
    ours.eval()
    pixel_values = image_batch(1, 256, 256).float() / 255
    with torch.no_grad():
        theirs = hf(pixel_values=pixel_values).encoder_last_hidden_state
        mine = ours.encoder(ours.backbone(pixel_values))
    assert max_diff(theirs[-1], mine[-1]) > 1e-2

    cfg.merge_from_dict({'model.backbone.first_block_projection': False})
    plain = MODELS.build(cfg.model)
    with pytest.raises(hw.WeightConversionError) as info:
        hw.convert_hf_rtdetr_state_dict(state, arch, plain.state_dict())
    message = str(info.value)
    assert ('transformers model.backbone.model.encoder.stages.0.layers.0.'
            'shortcut.convolution.weight (64, 64, 1, 1) maps to our '
            'backbone.layer1.0.downsample.1.weight, which our model does '
            'not have') in message
    assert 'model.backbone.first_block_projection=True' in message


# The PekingU checkpoints' layouts (transformers' conversion script):
# (backbone blocks, depths, widths), encoder in_channels / width / FFN,
# CSP expansion, decoder layers; 300 queries, 80 classes.
HUB_LAYOUTS = {
    'r18vd': ('basic', [2, 2, 2, 2], [64, 128, 256, 512], 256, 1024, 0.5, 3),
    'r34vd': ('basic', [3, 4, 6, 3], [64, 128, 256, 512], 256, 1024, 0.5, 4),
    'r50vd': ('bottleneck', [3, 4, 6, 3], [256, 512, 1024,
                                           2048], 256, 1024, 1.0, 6),
    'r101vd': ('bottleneck', [3, 4, 23, 3], [256, 512, 1024,
                                             2048], 384, 2048, 1.0, 6),
}


@pytest.mark.parametrize('name', list(HUB_LAYOUTS))
def test_every_hub_layout_maps_one_to_one(name):
    """Built on the meta device (shapes only): every transformers tensor
    converts exactly once into a model built from our COCO config with the
    printed overrides, and every tensor of ours is covered."""
    blocks, depths, widths, hidden, ffn, expansion, layers = HUB_LAYOUTS[name]
    config = transformers.RTDetrConfig(
        backbone_config=transformers.RTDetrResNetConfig(
            layer_type=blocks,
            depths=depths,
            hidden_sizes=widths,
            out_indices=[2, 3, 4]),
        encoder_in_channels=widths[1:],
        encoder_hidden_dim=hidden,
        encoder_ffn_dim=ffn,
        decoder_in_channels=[hidden] * 3,
        hidden_expansion=expansion,
        decoder_layers=layers,
        num_labels=80)
    with torch.device('meta'):
        hf = transformers.RTDetrForObjectDetection(config)
    arch = hw.arch_from_hf_config(config)
    assert arch.describe().startswith(f'RT-DETR {name} ')
    base = R18_COCO if blocks == 'basic' else osp.join(
        REPO, 'configs', 'rtdetr', 'rtdetr_r50_coco.py')
    init_default_scope('engine_plugins')
    with torch.device('meta'):
        ours = MODELS.build(hw.default_model_cfg(arch, base).model)
    result = hw.convert_hf_rtdetr_state_dict(hf.state_dict(), arch,
                                             ours.state_dict())
    used = [k for keys, _ in result.converted for k in keys]
    assert sorted(used) == sorted(hw.normalize_hf_keys(hf.state_dict()))
    assert sorted(result.state_dict) == sorted(ours.state_dict())
    assert not result.new and not result.dropped
    assert all(k.endswith('num_batches_tracked') for k in result.filled)


def test_shape_mismatch_and_unmapped_keys_name_both_sides(r18_folder):
    folder, _ = r18_folder
    state, config, _ = hw.read_hf_rtdetr(folder)
    arch = hw.arch_from_hf_config(config)
    init_default_scope('engine_plugins')
    cfg = hw.default_model_cfg(arch, BASE_MODEL)
    cfg.merge_from_dict({'model.criterion.num_classes': 5})
    target = MODELS.build(cfg.model).state_dict()
    state['model.decoder.layers.3.mlp.fc1.weight'] = torch.zeros(1024, 256)
    with pytest.raises(hw.WeightConversionError) as info:
        hw.convert_hf_rtdetr_state_dict(state, arch, target)
    message = str(info.value)
    assert ('shape mismatch: transformers model.enc_score_head.weight '
            '(7, 256) vs our decoder.query_selection.score_head.weight '
            '(5, 256)') in message
    assert ('transformers model.decoder.layers.3.mlp.fc1.weight (1024, 256) '
            'maps to no key of ours') in message
    assert '3 decoder layers' in message
    assert 'model.criterion.num_classes=7' in message

    # fine-tuning on 5 classes: class layers dropped, ours new
    del state['model.decoder.layers.3.mlp.fc1.weight']
    result = hw.convert_hf_rtdetr_state_dict(
        state, arch, target, new_class_heads=True)
    assert sorted(result.dropped) == sorted(
        k for k in state
        if k.startswith(('model.enc_score_head.', 'model.decoder.class_embed',
                         'model.denoising_class_embed')))
    assert len(result.new) == len(result.dropped) == 2 + 2 * 3 + 1
    assert not set(result.new) & set(result.state_dict)


def test_config_overrides_name_what_our_configs_lack(r18_folder):
    folder, _ = r18_folder
    _, config, info = hw.read_hf_rtdetr(folder)
    assert info['weights_file'] == 'model.safetensors'
    assert len(info['classes']) == NUM_CLASSES
    arch = hw.arch_from_hf_config(config)
    assert (arch.depth, arch.out_indices, arch.expansion, arch.num_layers) \
        == (18, (1, 2, 3), 0.5, 3)
    needed = hw.config_overrides(arch, Config.fromfile(R18_COCO).model)
    assert needed == {
        'model.data_preprocessor.mean': [0.0, 0.0, 0.0],
        'model.data_preprocessor.std': [255.0, 255.0, 255.0],
        'model.backbone.type': 'ResNetVd',
        'model.backbone.first_block_projection': True,
        'model.encoder.pe_order': 'hw',
        'model.decoder.num_queries': 100,
        'model.criterion.num_classes': NUM_CLASSES,
        'model.test_cfg.max_per_img': 100,
    }
    fitted = hw.default_model_cfg(arch, R18_COCO)
    assert hw.config_overrides(arch, fitted.model) == {}
    assert hw.format_cfg_options({
        'a.type': 'ResNetVd',
        'a.mean': [0.0, 1.0],
        'a.idx': (1, 2),
        'a.init_cfg': None
    }) == 'a.type=ResNetVd a.mean="[0.0,1.0]" a.idx="(1,2)" a.init_cfg=None'


def test_unsupported_settings_are_listed():
    config = r18vd_config(
        encoder_layers=2,
        decoder_activation_function='gelu',
        learn_initial_query=True)
    with pytest.raises(hw.WeightConversionError) as info:
        hw.arch_from_hf_config(config)
    message = str(info.value)
    assert 'encoder_layers=2' in message
    assert "decoder_activation_function='gelu'" in message
    assert 'learn_initial_query=True' in message


def test_resnet_vd_default_is_resnet_v1d():
    init_default_scope('engine_plugins')
    cfg = dict(depth=18, out_indices=(1, 2, 3))
    vd = MODELS.build(dict(type='ResNetVd', **cfg))
    v1d = MODELS.build(dict(type='ResNetV1d', **cfg))
    vd.eval()  # (mmdet's ResNet.train returns None)
    v1d.eval()
    assert list(vd.state_dict()) == list(v1d.state_dict())
    v1d.load_state_dict(vd.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(vd(x), v1d(x)):
            assert torch.equal(a, b)
    projected = MODELS.build(
        dict(
            type='ResNetVd',
            first_block_projection=True,
            frozen_stages=1,
            **cfg))
    extra = sorted(set(projected.state_dict()) - set(vd.state_dict()))
    assert extra == [
        f'layer1.0.downsample.{k}'
        for k in ('1.weight', '2.bias', '2.num_batches_tracked',
                  '2.running_mean', '2.running_var', '2.weight')
    ]
    assert not projected.layer1[0].downsample[1].weight.requires_grad


def test_position_embedding_order():
    wh = sincos_pos_embed_2d(3, 5, 16)
    hw_ = sincos_pos_embed_2d(3, 5, 16, order='hw')
    assert torch.equal(hw_, torch.cat([wh[:, 8:], wh[:, :8]], 1))
    # row 1, column 0: the first half is the row's in 'hw'
    assert float(hw_[5, 0]) == pytest.approx(float(torch.sin(torch.ones(1))))
    with pytest.raises(ValueError, match="'wh' or 'hw'"):
        sincos_pos_embed_2d(3, 5, 16, order='xy')
