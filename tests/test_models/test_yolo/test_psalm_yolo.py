"""The PSALM YOLO parts: shapes, init, prototypes, and one training step."""
import math

import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

from engine_plugins.models.yolo import (PSALMDualHead, PSALMFusion,
                                        YOLOv8CSPDarknet, YOLOv8PAFPN)
from engine_plugins.models.yolo.layers import SPPF, C2f
from engine_plugins.registry import MODELS

CHANNELS = [64, 128, 256]  # n-size P3-P5


def tiny_model(num_classes=3, levels=3):
    init_default_scope('engine_plugins')
    channels = [32, 64, 128, 256][-levels:]
    strides = [4, 8, 16, 32][-levels:]
    model = MODELS.build(
        dict(
            type='PSALMYOLO',
            data_preprocessor=dict(
                type='DetDataPreprocessor',
                mean=[0, 0, 0],
                std=[255, 255, 255],
                bgr_to_rgb=True,
                pad_size_divisor=32),
            backbone=dict(
                type='YOLOv8CSPDarknet',
                out_indices=tuple(range(5 - levels, 5))),
            neck=dict(type='YOLOv8PAFPN'),
            fusion=dict(
                type='PSALMFusion', num_classes=num_classes, embed_dims=32),
            bbox_head=dict(type='PSALMDualHead')))
    # The backbone's widths and strides reach every part.
    assert model.neck.in_channels == channels
    assert model.bbox_head.strides == strides
    model.init_weights()
    return model


def _batch(boxes, labels, size=64):
    sample = DetDataSample(
        metainfo=dict(
            img_shape=(size, size),
            ori_shape=(size // 2, size // 2),
            scale_factor=(2.0, 2.0)))
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor(boxes, dtype=torch.float32),
        labels=torch.tensor(labels))
    gen = torch.Generator().manual_seed(0)
    img = torch.randint(0, 255, (3, size, size), generator=gen,
                        dtype=torch.uint8)
    return dict(inputs=[img], data_samples=[sample])


def test_c2f_and_sppf_shapes():
    x = torch.randn(2, 16, 8, 8)
    c2f = C2f(16, 32, num_blocks=2)
    # 1x1 to 2 x 16 channels, two 16-channel bottlenecks, 4 x 16 fused.
    assert c2f.final_conv.conv.in_channels == 64
    assert c2f(x).shape == (2, 32, 8, 8)
    assert SPPF(16, 24)(x).shape == (2, 24, 8, 8)


@pytest.mark.parametrize('widen,max_channels,expected', [
    (0.25, 1024, [32, 64, 128, 256]),  # n
    (0.75, 768, [96, 192, 384, 576]),  # m: 1024 capped at 768, x 0.75
])
def test_backbone_channels_and_strides(widen, max_channels, expected):
    backbone = YOLOv8CSPDarknet(
        widen_factor=widen, max_channels=max_channels,
        out_indices=(1, 2, 3, 4))
    assert backbone.out_channels == expected
    if widen == 0.25:
        outs = backbone(torch.zeros(1, 3, 64, 64))
        assert [o.shape[-1] for o in outs] == [16, 8, 4, 2]


@pytest.mark.parametrize('frozen', [-1, 0, 1, 4])
def test_backbone_frozen_stages_stay_frozen_in_training(frozen):
    backbone = YOLOv8CSPDarknet(frozen_stages=frozen)
    parts = [backbone.stem, *backbone.stages]
    backbone.train()
    for i, part in enumerate(parts):
        is_frozen = i <= frozen
        assert all(p.requires_grad != is_frozen for p in part.parameters())
        assert all(m.training != is_frozen for m in part.modules())
    with pytest.raises(ValueError, match='frozen_stages'):
        YOLOv8CSPDarknet(frozen_stages=5)


def test_neck_keeps_channels_for_p2_to_p5_and_p3_to_p5():
    feats = [torch.randn(1, c, 64 // s, 64 // s)
             for c, s in zip([32, 64, 128, 256], [4, 8, 16, 32])]
    outs = YOLOv8PAFPN([32, 64, 128, 256])(feats)
    assert [o.shape[1:] for o in outs] == [f.shape[1:] for f in feats]
    outs = YOLOv8PAFPN(CHANNELS)(feats[1:])
    assert [o.shape[1] for o in outs] == CHANNELS


def test_head_channels_and_bias_init():
    head = PSALMDualHead(CHANNELS, [8, 16, 32], embed_dims=32,
                         num_classes=80)
    head.init_weights()
    assert head.box_branches[0][-1].out_channels == 64
    assert torch.all(head.box_branches[2][-1].bias == 1.0)
    # log(5 / 80 / (640 / 8)^2) = log(5 / 512000)
    assert float(head.logit_bias[0]) == pytest.approx(math.log(5 / 512000))


def test_prototypes_loaded_from_a_file_are_frozen(tmp_path):
    path = tmp_path / 'class_names.pth'
    torch.save(torch.randn(7, 16), path)
    fusion = PSALMFusion(CHANNELS, prototypes_file=str(path))
    assert fusion.num_classes == 7 and fusion.embed_dims == 16
    assert 'base_prototypes' not in dict(fusion.named_parameters())
    torch.save(torch.randn(7), tmp_path / 'bad.pth')
    with pytest.raises(ValueError, match=r'bad.pth: expected a \(K, D\)'):
        PSALMFusion(CHANNELS, prototypes_file=str(tmp_path / 'bad.pth'))


def test_first_iteration_reaches_every_parameter():
    model = tiny_model()
    # At init every side decodes to ~7.5 bins, i.e. boxes of ~120, 240 and
    # 480 px at strides 8, 16, 32: one object of each size gives every
    # level positives.
    data = _batch([[10., 10, 110, 110], [150, 20, 380, 250],
                   [16, 16, 496, 496]], [0, 1, 2],
                  size=512)
    losses = model(**model.data_preprocessor(data, True), mode='loss')
    assert set(losses) == {'loss_cls', 'loss_bbox', 'loss_dfl'}
    assert all(bool(torch.isfinite(v)) and v > 0 for v in losses.values())
    sum(losses.values()).backward()
    missing = [
        n for n, p in model.named_parameters()
        if p.requires_grad and (p.grad is None or not p.grad.any())
    ]
    assert missing == []


def test_predict_rescales_to_the_original_image():
    model = tiny_model().eval()
    model.bbox_head.test_cfg.update(score_thr=0.0, max_per_img=5)
    data = _batch([[4., 4, 14, 14]], [0])
    out = model(**model.data_preprocessor(data, False), mode='predict')
    pred = out[0].pred_instances
    assert len(pred) == 5 and pred.bboxes.shape == (5, 4)
    # scale_factor 2 and a 32x32 original: boxes are clipped to it
    assert float(pred.bboxes.max()) <= 32.0
    assert torch.all(pred.labels < 3)
    # Nothing above the threshold (a confident model on an empty image):
    # empty results, not a crash inside NMS.
    model.bbox_head.test_cfg.update(score_thr=1.0)
    out = model(**model.data_preprocessor(data, False), mode='predict')
    pred = out[0].pred_instances
    assert len(pred) == 0 and pred.bboxes.shape == (0, 4)


def test_explicit_channels_that_disagree_with_the_backbone_are_named():
    init_default_scope('engine_plugins')
    with pytest.raises(ValueError, match=r'neck.in_channels=\[64, 128\]'):
        MODELS.build(
            dict(
                type='PSALMYOLO',
                backbone=dict(type='YOLOv8CSPDarknet', out_indices=(2, 3, 4)),
                neck=dict(type='YOLOv8PAFPN', in_channels=[64, 128]),
                fusion=dict(type='PSALMFusion', num_classes=2, embed_dims=8,
                            num_heads=2),
                bbox_head=dict(type='PSALMDualHead')))


@pytest.mark.parametrize('multi_label', [True, False])
def test_multi_label_scores_every_class_above_the_threshold(
        monkeypatch, multi_label):
    """One anchor with classes 0 and 2 at 0.9 and 0.6, one with class 1 at
    0.8, all else far below ``score_thr``: the reference protocol reports
    the first anchor's box under both classes (class-aware NMS keeps both);
    top-class-only reports it once."""
    model = tiny_model().eval()
    head = model.bbox_head
    head.test_cfg.update(score_thr=0.3, multi_label=multi_label)

    def fixed_maps(feats, prototypes):
        cls_maps = [torch.full((1, 3) + f.shape[-2:], -20.0) for f in feats]
        cls_maps[0][0, :, 0, 0] = torch.logit(torch.tensor([0.9, 0.2, 0.6]))
        cls_maps[0][0, 1, 1, 1] = torch.logit(torch.tensor(0.8))
        box_maps = [
            torch.zeros((1, 4 * head.coder.reg_max) + f.shape[-2:])
            for f in feats
        ]
        return cls_maps, box_maps

    monkeypatch.setattr(head, 'forward', fixed_maps)
    data = _batch([[4., 4, 14, 14]], [0])
    pred = model(**model.data_preprocessor(data, False),
                 mode='predict')[0].pred_instances
    got = sorted(zip(pred.scores.tolist(), pred.labels.tolist()),
                 reverse=True)
    expected = [(0.9, 0), (0.8, 1), (0.6, 2)] if multi_label else [(0.9, 0),
                                                                   (0.8, 1)]
    assert [label for _, label in got] == [label for _, label in expected]
    assert [s for s, _ in got] == pytest.approx([s for s, _ in expected])
    if multi_label:  # the same box under classes 0 and 2
        first = {label: box for box, label in zip(pred.bboxes.tolist(),
                                                  pred.labels.tolist())}
        assert first[0] == first[2]
