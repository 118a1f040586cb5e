import math

import pytest
import torch
import torch.nn.functional as F

# importing the module registers HybridEncoder in MODELS
from engine_plugins.models.rtdetr.hybrid_encoder import HybridEncoder
from engine_plugins.models.rtdetr.rtdetr_layers import (AIFILayer, CSPRepLayer,
                                                        RepVGGBlock,
                                                        sincos_pos_embed_2d)
from engine_plugins.registry import MODELS

# ResNet level sizes of a 200x328 image: strides 8, 16, 32
ODD_SIZES = [(25, 41), (13, 21), (7, 11)]


def _feats(channels, sizes=ODD_SIZES, batch=2):
    torch.manual_seed(0)
    return [torch.randn(batch, c, h, w) for c, (h, w) in zip(channels, sizes)]


def _randomise_bn(module):
    """Give every BN non-trivial affine params and running stats."""
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)


@pytest.mark.parametrize('in_channels,expansion',
                         [((512, 1024, 2048), 1.0), ((128, 256, 512), 0.5)])
def test_output_shapes_odd_sizes(in_channels, expansion):
    encoder = HybridEncoder(in_channels=in_channels, expansion=expansion)
    outs = encoder(_feats(in_channels))
    assert encoder.out_channels == 256 and encoder.num_levels == 3
    assert [tuple(o.shape) for o in outs] == [(2, 256, h, w)
                                              for h, w in ODD_SIZES]
    # R18's CSP layers have hidden 128 != 256, so conv3 is a real conv
    has_conv3 = not isinstance(encoder.fpn_blocks[0].conv3, torch.nn.Identity)
    assert has_conv3 == (expansion != 1.0)


def test_sincos_embedding_by_hand():
    height, width, dim, temp = 2, 3, 8, 10000.
    emb = sincos_pos_embed_2d(height, width, dim, temp)
    omega = [1.0, 1 / 100.]  # 1 / temp ** (i / 2) for i = 0, 1
    want = []
    for h in range(height):
        for w in range(width):
            want.append([math.sin(w * o) for o in omega] +
                        [math.cos(w * o) for o in omega] +
                        [math.sin(h * o) for o in omega] +
                        [math.cos(h * o) for o in omega])
    assert emb.shape == (6, 8)
    torch.testing.assert_close(emb, torch.tensor(want))
    # every cell has its own code (off-diagonal distances > 0)
    assert torch.cdist(emb, emb).add(torch.eye(6)).min() > 1e-3
    half = sincos_pos_embed_2d(2, 3, 8, dtype=torch.bfloat16)
    assert half.dtype == torch.bfloat16
    with pytest.raises(ValueError, match='divisible by 4'):
        sincos_pos_embed_2d(2, 3, 6)


def test_aifi_matches_hand_computation():
    torch.manual_seed(0)
    layer = AIFILayer(16, num_heads=2, ffn_dim=24).eval()
    x = torch.randn(2, 6, 16)
    pos = sincos_pos_embed_2d(2, 3, 16)
    attn = layer.self_attn(x + pos, x + pos, x)[0]  # pos on q and k only
    x1 = F.layer_norm(x + attn, (16, ), layer.norm1.weight, layer.norm1.bias)
    fc1, fc2 = layer.ffn.layers[0][0], layer.ffn.layers[1]
    ffn = F.linear(F.gelu(F.linear(x1, fc1.weight, fc1.bias)), fc2.weight,
                   fc2.bias)
    want = F.layer_norm(x1 + ffn, (16, ), layer.norm2.weight,
                        layer.norm2.bias)
    torch.testing.assert_close(layer(x, pos), want)
    # pos added to the values too would be a different function
    wrong = layer.self_attn(x + pos, x + pos, x + pos)[0]
    assert not torch.allclose(wrong, attn, atol=1e-3)


def test_aifi_position_breaks_permutation_equivariance():
    torch.manual_seed(0)
    layer = AIFILayer(16, num_heads=2, ffn_dim=24).eval()
    x = torch.randn(1, 6, 16)
    perm = torch.tensor([5, 3, 0, 1, 4, 2])
    zero = torch.zeros(6, 16)
    torch.testing.assert_close(
        layer(x[:, perm], zero), layer(x, zero)[:, perm])
    pos = sincos_pos_embed_2d(2, 3, 16)
    assert not torch.allclose(
        layer(x[:, perm], pos), layer(x, pos)[:, perm], atol=1e-3)


def _conv_bn(conv_module, x):
    """Conv (no bias) + eval-mode BN from the module's own tensors."""
    conv, bn = conv_module.conv, conv_module.bn
    y = F.conv2d(x, conv.weight, None, conv.stride, conv.padding)
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return ((y - bn.running_mean[:, None, None]) * scale[:, None, None] +
            bn.bias[:, None, None])


def test_repvgg_block_formula():
    torch.manual_seed(0)
    block = RepVGGBlock(4)
    _randomise_bn(block)
    block.eval()
    x = torch.randn(2, 4, 5, 7)
    pre = _conv_bn(block.conv3x3, x) + _conv_bn(block.conv1x1, x)
    torch.testing.assert_close(block(x), pre * torch.sigmoid(pre))
    assert block.conv3x3.conv.kernel_size == (3, 3)


@pytest.mark.parametrize('expansion', [1.0, 0.5])
def test_csp_rep_layer_formula(expansion):
    torch.manual_seed(0)
    layer = CSPRepLayer(6, 4, num_blocks=2, expansion=expansion)
    _randomise_bn(layer)
    layer.eval()
    x = torch.randn(2, 6, 5, 7)

    def silu_conv(m, t):
        y = _conv_bn(m, t)
        return y * torch.sigmoid(y)

    branch = silu_conv(layer.conv1, x)
    for block in layer.blocks:
        pre = _conv_bn(block.conv3x3, branch) + _conv_bn(block.conv1x1,
                                                         branch)
        branch = pre * torch.sigmoid(pre)
    want = branch + silu_conv(layer.conv2, x)
    if expansion != 1.0:
        assert layer.conv1.conv.out_channels == 2
        want = silu_conv(layer.conv3, want)
    torch.testing.assert_close(layer(x), want)


def test_every_parameter_gets_gradient():
    encoder = HybridEncoder(
        in_channels=(8, 16, 24), hidden_dim=32, num_heads=4, ffn_dim=64,
        num_csp_blocks=1)
    outs = encoder(_feats((8, 16, 24)))
    sum(o.sum() for o in outs).backward()
    missing = [n for n, p in encoder.named_parameters()
               if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_bad_inputs_raise_clear_errors():
    encoder = HybridEncoder(
        in_channels=(8, 16, 24), hidden_dim=32, num_heads=4, ffn_dim=64,
        num_csp_blocks=1)
    feats = _feats((8, 16, 24))
    with pytest.raises(ValueError, match='expects 3 feature maps.*got 2'):
        encoder(feats[:2])
    with pytest.raises(ValueError, match=r'channels \(8, 16, 24\).*'
                       r'\(2, 8, 25, 41\), \(2, 16, 13, 21\), '
                       r'\(2, 12, 7, 11\)'):
        encoder(feats[:2] + [torch.randn(2, 12, 7, 11)])
    with pytest.raises(ValueError, match=r'level 2 has size \(6, 11\).*'
                       r'downsamples to \(7, 11\)'):
        encoder(feats[:2] + [torch.randn(2, 24, 6, 11)])
    with pytest.raises(ValueError, match='at least 2 levels'):
        HybridEncoder(in_channels=(8, ))
    with pytest.raises(ValueError, match='AIFI activation'):
        HybridEncoder(in_channels=(8, 16), hidden_dim=32, aifi_act='swish')


def test_build_from_config():
    encoder = MODELS.build(
        dict(
            type='HybridEncoder',
            in_channels=(8, 16, 24),
            hidden_dim=32,
            num_heads=4,
            ffn_dim=64,
            num_csp_blocks=2,
            expansion=0.5))
    assert isinstance(encoder, HybridEncoder)
    assert len(encoder.fpn_blocks[0].blocks) == 2
    assert encoder.aifi.ffn.feedforward_channels == 64
    outs = encoder(_feats((8, 16, 24), batch=1))
    assert [o.shape[1:] for o in outs] == [(32, h, w) for h, w in ODD_SIZES]


def test_fusion_wiring_unrolled():
    """The forward equals the CCFM data flow written out for 3 levels."""
    torch.manual_seed(0)
    enc = HybridEncoder(
        in_channels=(8, 16, 24), hidden_dim=32, num_heads=4, ffn_dim=64,
        num_csp_blocks=1)
    _randomise_bn(enc)
    enc.eval()
    s3, s4, s5 = _feats((8, 16, 24), batch=1)
    p3, p4, p5 = (conv(f) for conv, f in zip(enc.input_proj, (s3, s4, s5)))
    pos = sincos_pos_embed_2d(7, 11, 32)
    p5 = enc.aifi(p5.flatten(2).transpose(1, 2), pos).transpose(1, 2)
    p5 = p5.reshape(1, 32, 7, 11)
    # top-down: lateral conv of the coarser map, upsample, fuse
    h5 = enc.lateral_convs[0](p5)
    t4 = enc.fpn_blocks[0](torch.cat([F.interpolate(h5, (13, 21)), p4], 1))
    h4 = enc.lateral_convs[1](t4)
    t3 = enc.fpn_blocks[1](torch.cat([F.interpolate(h4, (25, 41)), p3], 1))
    # bottom-up: the lateral outputs (not t4 / p5) are fused
    o4 = enc.pan_blocks[0](torch.cat([enc.downsample_convs[0](t3), h4], 1))
    o5 = enc.pan_blocks[1](torch.cat([enc.downsample_convs[1](o4), h5], 1))
    for got, want in zip(enc([s3, s4, s5]), (t3, o4, o5)):
        torch.testing.assert_close(got, want)
