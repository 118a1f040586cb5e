"""The YOLOv8 backbone: CSPDarknet with C2f stages and SPPF."""
import math
from typing import List, Sequence, Tuple

import torch
from mmengine.model import BaseModule

from engine_plugins.registry import MODELS
from .layers import SPPF, C2f, conv

# (out channels at widen 1.0, C2f blocks at deepen 1.0) per stage
STAGES = ((128, 3), (256, 6), (512, 6), (1024, 3))


def scaled_channels(channels: int, widen: float, max_channels: int) -> int:
    """``min(channels, max_channels) * widen`` rounded up to a multiple of
    8 (YOLOv8's rule)."""
    return int(math.ceil(min(channels, max_channels) * widen / 8) * 8)


@MODELS.register_module()
class YOLOv8CSPDarknet(BaseModule):
    """Stem (stride 2) and four stages (strides 4, 8, 16, 32), each a
    stride-2 conv and a C2f; the last ends with SPPF.

    Sizes (``deepen_factor``, ``widen_factor``, ``max_channels``): n (0.33,
    0.25, 1024), s (0.33, 0.5, 1024), m (0.67, 0.75, 768), l (1.0, 1.0,
    512), x (1.0, 1.25, 512).

    Args:
        deepen_factor: Scales the number of C2f blocks.
        widen_factor: Scales the channels.
        max_channels: Channel cap before widening.
        out_indices: Stages to return: 1..4 are strides 4, 8, 16, 32.
        frozen_stages: Parts kept at their loaded weights (no gradient, BN
            statistics fixed: eval mode even while training): -1 none, 0
            the stem, ``i`` the stem and stages 1..i (mmdet's ``ResNet`` and
            mmyolo's backbones count the same way). For fine-tuning.

    Example:
        >>> backbone = MODELS.build(dict(
        ...     type='YOLOv8CSPDarknet', deepen_factor=0.33,
        ...     widen_factor=0.25, out_indices=(1, 2, 3, 4)))
    """

    def __init__(self,
                 deepen_factor: float = 0.33,
                 widen_factor: float = 0.25,
                 max_channels: int = 1024,
                 out_indices: Sequence[int] = (2, 3, 4),
                 frozen_stages: int = -1,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not set(out_indices) <= {1, 2, 3, 4}:
            raise ValueError(f'out_indices must be within 1..4, got '
                             f'{out_indices}')
        if not -1 <= frozen_stages <= len(STAGES):
            raise ValueError(f'frozen_stages must be within -1..'
                             f'{len(STAGES)}, got {frozen_stages}')
        self.frozen_stages = frozen_stages
        self.out_indices = tuple(sorted(out_indices))
        self.deepen_factor = deepen_factor
        in_channels = scaled_channels(64, widen_factor, max_channels)
        self.stem = conv(3, in_channels, 3, stride=2)
        self.stages = torch.nn.ModuleList()
        stage_channels: List[int] = []
        for i, (channels, blocks) in enumerate(STAGES):
            out = scaled_channels(channels, widen_factor, max_channels)
            layers = [
                conv(in_channels, out, 3, stride=2),
                C2f(out,
                    out,
                    max(round(blocks * deepen_factor), 1),
                    shortcut=True)
            ]
            if i == len(STAGES) - 1:
                layers.append(SPPF(out, out))
            self.stages.append(torch.nn.Sequential(*layers))
            stage_channels.append(out)
            in_channels = out
        # What the neck and head need, so a config never repeats them.
        self.out_channels = [stage_channels[i - 1] for i in self.out_indices]
        self.strides = [2**(i + 1) for i in self.out_indices]
        self._freeze_stages()

    def _frozen_parts(self) -> List[torch.nn.Module]:
        if self.frozen_stages < 0:
            return []
        return [self.stem, *self.stages[:self.frozen_stages]]

    def _freeze_stages(self) -> None:
        for part in self._frozen_parts():
            part.eval()
            for param in part.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> 'YOLOv8CSPDarknet':
        """Set the mode; frozen parts stay in eval mode."""
        super().train(mode)
        self._freeze_stages()
        return self

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        outs = []
        x = self.stem(x)
        for i, stage in enumerate(self.stages, start=1):
            x = stage(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)
