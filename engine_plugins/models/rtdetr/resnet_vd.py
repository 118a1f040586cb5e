"""ResNet-vd, optionally with RT-DETR's projection shortcut everywhere a
stage starts."""
from mmcv.cnn import build_conv_layer, build_norm_layer
from mmdet.models.backbones import ResNetV1d
from torch import nn

from engine_plugins.registry import MODELS


@MODELS.register_module()
class ResNetVd(ResNetV1d):
    """mmdet's ``ResNetV1d`` (deep 3-conv stem, 2x2 average pool before the
    1x1 shortcut conv of a strided block) with one option.

    The PResNet-vd of RT-DETR (also transformers' ``RTDetrResNetBackbone``)
    gives the first block of *every* stage a 1x1 conv + BN shortcut, even
    where the block keeps the shape. With bottleneck blocks (R50/R101)
    every first block changes the channel count, so that is mmdet's layout
    too; with basic blocks (R18/R34) the first block of the first stage
    (64 -> 64 channels, stride 1) has an identity shortcut in mmdet and a
    projection in PResNet-vd. ``first_block_projection=True`` adds it.
    With the default (False) this is ``ResNetV1d`` unchanged.

    Args:
        first_block_projection: Give ``layer1[0]`` a 1x1 conv + BN shortcut
            where mmdet gives it none (only basic blocks are affected).
        **kwargs: ``ResNetV1d`` / ``ResNet`` arguments (``depth``,
            ``out_indices``, ``style``, ...).

    Example:
        >>> backbone = MODELS.build(dict(
        ...     type='ResNetVd', depth=18, out_indices=(1, 2, 3),
        ...     first_block_projection=True))
        >>> backbone.layer1[0].downsample  # (1x1 pool, 1x1 conv, BN)
    """

    def __init__(self, first_block_projection: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.first_block_projection = first_block_projection
        block = self.layer1[0]
        if first_block_projection and block.downsample is None:
            # layer1 keeps the stem's channels and stride here (else mmdet
            # would have built a downsample). With avg_down mmdet puts a
            # pool of the block's stride first even at stride 1 (a no-op
            # 1x1 pool): kept, so the keys are downsample.1/.2 as in every
            # other first block.
            channels = self.stem_channels
            block.downsample = nn.Sequential(
                nn.AvgPool2d(
                    kernel_size=1,
                    stride=1,
                    ceil_mode=True,
                    count_include_pad=False),
                build_conv_layer(
                    self.conv_cfg, channels, channels, 1, stride=1,
                    bias=False),
                build_norm_layer(self.norm_cfg, channels)[1])
            # the new conv and BN follow layer1's frozen_stages setting
            self._freeze_stages()
