"""RT-DETR assembled from config: gradients reach every parameter,
inference decodes to pixel xyxy in the original image, the decoder's
refinement and eval_idx, and the box-contract guard."""
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

from engine_plugins.models.rtdetr.rtdetr import resnet_out_channels
from engine_plugins.registry import MODELS
from tests.test_models.test_rtdetr.test_rtdetr_criterion import MATCHER


@pytest.fixture(autouse=True)
def _scope():
    # The detector builds its data preprocessor through mmengine's root
    # registry, which finds ours only in the engine_plugins scope.
    init_default_scope('engine_plugins')


def tiny_rtdetr_cfg(num_classes=3, **decoder):
    return dict(
        type='RTDETR',
        data_preprocessor=dict(
            type='RTDETRDataPreprocessor', pad_size_divisor=32),
        backbone=dict(
            type='ResNet', depth=18, base_channels=8, out_indices=(1, 2, 3)),
        encoder=dict(
            type='HybridEncoder',
            hidden_dim=16,
            num_heads=2,
            ffn_dim=32,
            num_csp_blocks=1),
        decoder=dict(
            type='RTDETRDecoder',
            embed_dims=16,
            num_queries=10,
            num_layers=2,
            num_heads=2,
            ffn_channels=32,
            denoising=dict(num_denoising=6),
            **decoder),
        criterion=dict(
            type='RTDETRCriterion', num_classes=num_classes, matcher=MATCHER),
        test_cfg=dict(max_per_img=5))


def _batch(num_gts=(2, 1)):
    samples = []
    for i, n in enumerate(num_gts):
        sample = DetDataSample(
            metainfo=dict(img_path=f'{i}.jpg', img_shape=(64, 96)))
        xy = torch.tensor([[4.0, 6.0], [30.0, 20.0], [50.0, 10.0]])[:n]
        sample.gt_instances = InstanceData(
            bboxes=torch.cat([xy, xy + 20], 1), labels=torch.arange(n) % 3)
        samples.append(sample)
    return dict(
        inputs=[
            torch.randint(0, 255, (3, 64, 96), dtype=torch.uint8)
            for _ in num_gts
        ],
        data_samples=samples)


def test_every_trainable_parameter_receives_a_gradient():
    torch.manual_seed(0)
    model = MODELS.build(tiny_rtdetr_cfg())
    model.train()
    # Box heads start with a zero last layer, which zeroes the gradient of
    # the layers before it on the first step only; perturb it so that a
    # zero gradient below means a disconnected parameter.
    decoder = model.decoder
    for mlp in [decoder.query_selection.bbox_head, *decoder.bbox_heads]:
        torch.nn.init.normal_(mlp.layers[-1].weight, std=0.01)
    data = model.data_preprocessor(_batch(), training=True)
    losses = model(**data, mode='loss')
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    missing = [
        name for name, p in model.named_parameters()
        if p.requires_grad and (p.grad is None or not p.grad.any())
    ]
    assert missing == []


def test_predict_gives_pixel_boxes_in_the_original_image():
    model = MODELS.build(tiny_rtdetr_cfg()).eval()
    # One query in a 64 (h) x 128 (w) input, centre (0.5, 0.5), size
    # (0.2, 0.4) -> pixel xyxy (51.2, 19.2, 76.8, 44.8); the image was
    # resized by 0.5, so in the original: (102.4, 38.4, 153.6, 89.6).
    logits = torch.tensor([[[-5.0, 3.0, -5.0]]])
    boxes = torch.tensor([[[0.5, 0.5, 0.2, 0.4]]])
    sample = DetDataSample(
        metainfo=dict(scale_factor=(0.5, 0.5), ori_shape=(200, 300)))
    result = model.decode(logits, boxes, (64, 128), [sample], rescale=True)
    best = result[0].scores.argmax()
    assert int(result[0].labels[best]) == 1
    assert float(result[0].scores[best]) == pytest.approx(
        torch.tensor(3.0).sigmoid().item())
    torch.testing.assert_close(result[0].bboxes[best],
                               torch.tensor([102.4, 38.4, 153.6, 89.6]))


def test_predict_runs_end_to_end_with_max_per_img_detections():
    model = MODELS.build(tiny_rtdetr_cfg()).eval()
    data = model.data_preprocessor(_batch(), training=False)
    with torch.no_grad():
        out = model(**data, mode='predict')
    for sample in out:
        pred = sample.pred_instances
        assert len(pred) == 5 and pred.bboxes.shape == (5, 4)
        assert ((pred.labels >= 0) & (pred.labels < 3)).all()


def test_eval_idx_stops_at_that_layer():
    model = MODELS.build(tiny_rtdetr_cfg(eval_idx=0)).eval()
    feats = model.extract_feat(torch.randn(1, 3, 64, 96))
    calls = []
    model.decoder.layers[1].register_forward_hook(
        lambda *args: calls.append(1))
    with torch.no_grad():
        out = model.decoder(feats)
    assert out.logits.shape[0] == 1 and not calls


def test_refinement_trains_the_previous_layer_through_the_loss_box():
    model = MODELS.build(tiny_rtdetr_cfg()).train()
    for mlp in model.decoder.bbox_heads:
        torch.nn.init.normal_(mlp.layers[-1].weight, std=0.01)
    feats = [f.detach() for f in model.extract_feat(torch.randn(1, 3, 64, 96))]
    out = model.decoder(feats)
    # Layer 1's loss box adds its delta to layer 0's undetached boxes.
    out.boxes[1].sum().backward()
    assert model.decoder.bbox_heads[0].layers[-1].weight.grad.abs().sum() > 0
    model.zero_grad()
    # ... but layer 1's reference input is detached: its score alone does
    # not reach layer 0's box head.
    out = model.decoder(feats)
    out.logits[1].sum().backward()
    grad = model.decoder.bbox_heads[0].layers[-1].weight.grad
    assert grad is None or grad.abs().sum() == 0


def test_a_plain_det_data_preprocessor_is_refused():
    cfg = tiny_rtdetr_cfg()
    cfg['data_preprocessor'] = dict(type='DetDataPreprocessor')
    with pytest.raises(TypeError, match='RTDETRDataPreprocessor'):
        MODELS.build(cfg)


def test_conflicting_class_counts_are_named():
    cfg = tiny_rtdetr_cfg()
    cfg['decoder']['num_classes'] = 80
    with pytest.raises(ValueError, match='decoder.num_classes=80'):
        MODELS.build(cfg)


def test_a_misspelt_argument_names_the_accepted_ones():
    # Keyword arguments the model does not take.
    cfg = tiny_rtdetr_cfg()
    cfg['decoder']['num_denoising'] = 100
    with pytest.raises(Exception, match="did you mean 'denoising'"):
        MODELS.build(cfg)


@pytest.mark.parametrize('type_, depth', [('ResNet', 18), ('ResNet', 34),
                                          ('ResNet', 50), ('ResNetV1d', 101)])
def test_encoder_channels_follow_every_resnet_depth(type_, depth):
    backbone = MODELS.build(
        dict(type=type_, depth=depth, base_channels=8, out_indices=(1, 2, 3)))
    feats = backbone(torch.zeros(1, 3, 64, 64))
    assert resnet_out_channels(backbone) == [f.shape[1] for f in feats]


def test_gts_are_packed_once_per_training_step(monkeypatch):
    """Denoising, the 7 matchings and the criterion share one pack: the
    gts are padded and converted to xyxy once per step."""
    from engine_plugins.structures import packed_targets
    torch.manual_seed(0)
    model = MODELS.build(tiny_rtdetr_cfg())
    model.train()
    data = model.data_preprocessor(_batch(), True)
    packs = []
    original = packed_targets.PackedTargets.pack.__func__

    def counted(cls, labels, boxes):
        packs.append(original(cls, labels, boxes))
        return packs[-1]

    monkeypatch.setattr(packed_targets.PackedTargets, 'pack',
                        classmethod(counted))
    seen = []
    matcher = model.criterion.matcher
    real_cost_blocks = matcher.cost_blocks

    def cost_blocks(logits, boxes, gt_labels, gt_boxes):
        seen.append(packed_targets.PackedTargets.of(gt_labels, gt_boxes))
        return real_cost_blocks(logits, boxes, gt_labels, gt_boxes)

    monkeypatch.setattr(matcher, 'cost_blocks', cost_blocks)
    losses = model(**data, mode='loss')
    assert len(packs) == 1
    num_layers = model.decoder.num_layers if hasattr(
        model.decoder, 'num_layers') else len(model.decoder.layers)
    assert len(seen) == num_layers + 1  # every layer and the encoder
    assert all(pack is packs[0] for pack in seen)
    assert all(torch.isfinite(v) for v in losses.values())
