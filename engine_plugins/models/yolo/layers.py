"""YOLOv8 building blocks on mmcv's ``ConvModule``.

mmdet's ``CSPLayer`` is the YOLOX/C3 form (two branches, one bottleneck
stack); YOLOv8's C2f keeps every bottleneck's output and concatenates them
all, and SPPF chains three max-pools. Both are written here.
"""
from typing import Optional

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule

# YOLOv8's BN and activation
NORM_CFG = dict(type='BN', momentum=0.03, eps=0.001)
ACT_CFG = dict(type='SiLU', inplace=True)


def conv(in_channels: int,
         out_channels: int,
         kernel_size: int = 1,
         stride: int = 1,
         norm_cfg: Optional[dict] = None,
         act_cfg: Optional[dict] = None) -> ConvModule:
    """Conv (no bias) + BN + SiLU with 'same' padding."""
    return ConvModule(
        in_channels,
        out_channels,
        kernel_size,
        stride=stride,
        padding=kernel_size // 2,
        norm_cfg=norm_cfg or NORM_CFG,
        act_cfg=act_cfg or ACT_CFG)


class Bottleneck(nn.Module):
    """Two 3x3 convs with an optional residual."""

    def __init__(self, channels: int, shortcut: bool = True) -> None:
        super().__init__()
        self.conv1 = conv(channels, channels, 3)
        self.conv2 = conv(channels, channels, 3)
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(x))
        return x + out if self.shortcut else out


class C2f(nn.Module):
    """Split a 1x1 projection in two halves, run ``num_blocks`` bottlenecks
    on the second, and fuse every intermediate output with a 1x1 conv."""

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 num_blocks: int = 1,
                 shortcut: bool = False,
                 expand_ratio: float = 0.5) -> None:
        super().__init__()
        self.mid = int(out_channels * expand_ratio)
        self.main_conv = conv(in_channels, 2 * self.mid, 1)
        self.blocks = nn.ModuleList(
            Bottleneck(self.mid, shortcut) for _ in range(num_blocks))
        self.final_conv = conv((2 + num_blocks) * self.mid, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = list(self.main_conv(x).chunk(2, 1))
        for block in self.blocks:
            outs.append(block(outs[-1]))
        return self.final_conv(torch.cat(outs, 1))


class SPPF(nn.Module):
    """Spatial pyramid pooling, fast: three chained 5x5 max-pools."""

    def __init__(self, in_channels: int, out_channels: int,
                 kernel_size: int = 5) -> None:
        super().__init__()
        mid = in_channels // 2
        self.conv1 = conv(in_channels, mid, 1)
        self.pool = nn.MaxPool2d(kernel_size, 1, kernel_size // 2)
        self.conv2 = conv(mid * 4, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [self.conv1(x)]
        for _ in range(3):
            outs.append(self.pool(outs[-1]))
        return self.conv2(torch.cat(outs, 1))
