"""The YOLOv8 PAFPN neck for any number of levels (P3-P5, or P2-P5)."""
from typing import List, Sequence

import torch
import torch.nn as nn
from mmengine.model import BaseModule

from engine_plugins.registry import MODELS
from .layers import C2f, conv


@MODELS.register_module()
class YOLOv8PAFPN(BaseModule):
    """Top-down then bottom-up fusion with C2f blocks (no shortcut).

    Level ``i`` keeps ``in_channels[i]`` channels: the top-down pass fuses
    the upsampled level above into each level, the bottom-up pass fuses a
    stride-2 conv of the level below into the top-down output above. A
    P2-P5 neck is ``in_channels`` of four backbone stages (strides 4-32);
    P3-P5 is three.

    Args:
        in_channels: Channels of the backbone outputs, finest first.
        deepen_factor: Scales the 3 C2f blocks of each fusion.

    Example:
        >>> neck = MODELS.build(dict(type='YOLOv8PAFPN',
        ...                          in_channels=[32, 64, 128, 256]))
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 deepen_factor: float = 0.33,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(in_channels) < 2:
            raise ValueError('YOLOv8PAFPN needs at least 2 levels')
        self.in_channels = list(in_channels)
        blocks = max(round(3 * deepen_factor), 1)
        levels = len(in_channels)
        self.upsample = nn.Upsample(scale_factor=2, mode='nearest')
        self.top_down = nn.ModuleList(
            C2f(in_channels[i + 1] + in_channels[i], in_channels[i], blocks)
            for i in range(levels - 1))
        self.downsample = nn.ModuleList(
            conv(in_channels[i], in_channels[i], 3, stride=2)
            for i in range(levels - 1))
        self.bottom_up = nn.ModuleList(
            C2f(in_channels[i] + in_channels[i + 1], in_channels[i + 1],
                blocks) for i in range(levels - 1))

    def forward(self, feats: Sequence[torch.Tensor]) -> List[torch.Tensor]:
        if len(feats) != len(self.in_channels):
            raise ValueError(f'YOLOv8PAFPN expects {len(self.in_channels)} '
                             f'levels, got {len(feats)}')
        top = list(feats)
        for i in reversed(range(len(feats) - 1)):
            top[i] = self.top_down[i](
                torch.cat([self.upsample(top[i + 1]), feats[i]], 1))
        outs = [top[0]]
        for i in range(len(feats) - 1):
            outs.append(self.bottom_up[i](
                torch.cat([self.downsample[i](outs[-1]), top[i + 1]], 1)))
        return outs
