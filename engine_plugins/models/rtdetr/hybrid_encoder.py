"""RT-DETR's hybrid encoder: AIFI on the coarsest level, then CCFM."""
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule

from engine_plugins.registry import MODELS
from .rtdetr_layers import AIFILayer, CSPRepLayer, sincos_pos_embed_2d


@MODELS.register_module()
class HybridEncoder(BaseModule):
    """Intra-scale attention on S5 (AIFI) and cross-scale fusion (CCFM).

    Each level is projected to ``hidden_dim`` by a 1x1 conv + BN. The
    coarsest level goes through one transformer encoder layer with a 2-D
    sin-cos position embedding computed for its actual size. CCFM then
    fuses top-down (1x1 lateral conv, nearest upsampling to the finer
    level's size, ``CSPRepLayer`` on the concatenation) and bottom-up
    (3x3 stride-2 conv, ``CSPRepLayer`` on the concatenation). Module lists
    are indexed in pass order: ``lateral_convs[0]`` / ``fpn_blocks[0]`` fuse
    S5 into S4, ``downsample_convs[0]`` / ``pan_blocks[0]`` fuse S3 into S4.

    Args:
        in_channels: Channels of the backbone levels, finest first
            (strides 8, 16, 32 for RT-DETR).
        hidden_dim: Channels of every output level.
        num_heads: AIFI attention heads.
        ffn_dim: AIFI feed-forward hidden size.
        dropout: AIFI dropout.
        aifi_act: AIFI feed-forward activation name or mmcv config.
        num_csp_blocks: RepVGG blocks per ``CSPRepLayer``.
        expansion: ``CSPRepLayer`` hidden-channel ratio (R18/R34: 0.5).
        pe_temperature: Frequency base of the position embedding.
        pe_order: Layout of the position embedding: ``'wh'`` (column
            sines first) or ``'hw'`` (row sines first, as transformers'
            RT-DETR; see :func:`sincos_pos_embed_2d`).
        norm_cfg: Norm of the convs.
        act_cfg: Activation of the fusion convs.
        init_cfg: mmengine init config.

    Example:
        >>> encoder = MODELS.build(dict(
        ...     type='HybridEncoder', in_channels=(128, 256, 512),
        ...     hidden_dim=256, expansion=0.5))
        >>> outs = encoder(backbone_feats)  # 3 x (B, 256, H_i, W_i)
    """

    def __init__(self,
                 in_channels: Sequence[int] = (512, 1024, 2048),
                 hidden_dim: int = 256,
                 num_heads: int = 8,
                 ffn_dim: int = 1024,
                 dropout: float = 0.0,
                 aifi_act: Union[str, dict] = 'gelu',
                 num_csp_blocks: int = 3,
                 expansion: float = 1.0,
                 pe_temperature: float = 10000.,
                 pe_order: str = 'wh',
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='SiLU'),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(in_channels) < 2:
            raise ValueError('HybridEncoder needs at least 2 levels, got '
                             f'in_channels={tuple(in_channels)}')
        if hidden_dim % 4 != 0:
            raise ValueError('HybridEncoder hidden_dim must be divisible by '
                             f'4 (2-D sin-cos embedding), got {hidden_dim}')
        self.in_channels = tuple(in_channels)
        self.num_levels = len(in_channels)
        self.out_channels = hidden_dim
        self.pe_temperature = pe_temperature
        if pe_order not in ('wh', 'hw'):
            raise ValueError("HybridEncoder pe_order must be 'wh' or 'hw', "
                             f'got {pe_order!r}')
        self.pe_order = pe_order
        conv_cfg = dict(norm_cfg=norm_cfg, act_cfg=act_cfg)
        csp_cfg = dict(
            num_blocks=num_csp_blocks, expansion=expansion, **conv_cfg)
        self.input_proj = nn.ModuleList(
            ConvModule(c, hidden_dim, 1, norm_cfg=norm_cfg, act_cfg=None)
            for c in in_channels)
        self.aifi = AIFILayer(hidden_dim, num_heads, ffn_dim, dropout,
                              aifi_act)
        boundaries = range(self.num_levels - 1)
        self.lateral_convs = nn.ModuleList(
            ConvModule(hidden_dim, hidden_dim, 1, **conv_cfg)
            for _ in boundaries)
        self.fpn_blocks = nn.ModuleList(
            CSPRepLayer(2 * hidden_dim, hidden_dim, **csp_cfg)
            for _ in boundaries)
        self.downsample_convs = nn.ModuleList(
            ConvModule(
                hidden_dim, hidden_dim, 3, stride=2, padding=1, **conv_cfg)
            for _ in boundaries)
        self.pan_blocks = nn.ModuleList(
            CSPRepLayer(2 * hidden_dim, hidden_dim, **csp_cfg)
            for _ in boundaries)

    def _check_inputs(self, feats: Sequence[torch.Tensor]) -> None:
        """Raise on a wrong level count, channel count or level size."""
        if len(feats) != self.num_levels:
            raise ValueError(f'HybridEncoder expects {self.num_levels} '
                             f'feature maps (in_channels={self.in_channels})'
                             f', got {len(feats)}')
        got = tuple(f.shape[1] if f.dim() == 4 else None for f in feats)
        if got != self.in_channels:
            shapes = [tuple(f.shape) for f in feats]
            raise ValueError('HybridEncoder expects (B, C, H, W) maps with '
                             f'channels {self.in_channels}, got shapes '
                             f'{shapes}')
        # the bottom-up 3x3 stride-2 conv (padding 1) maps size s to
        # (s - 1) // 2 + 1, as ResNet's strided stages do
        for i in range(self.num_levels - 1):
            fine, coarse = feats[i].shape[-2:], feats[i + 1].shape[-2:]
            want = tuple((s - 1) // 2 + 1 for s in fine)
            if tuple(coarse) != want:
                raise ValueError(
                    f'HybridEncoder level {i + 1} has size {tuple(coarse)} '
                    f'but level {i} ({tuple(fine)}) downsamples to {want}')

    def forward(self,
                feats: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
        """Encode backbone levels.

        Args:
            feats: ``num_levels`` maps ``(B, in_channels[i], H_i, W_i)``,
                finest first.

        Returns:
            ``num_levels`` maps ``(B, hidden_dim, H_i, W_i)``, finest first.
        """
        self._check_inputs(feats)
        proj: List[torch.Tensor] = [
            conv(f) for conv, f in zip(self.input_proj, feats)
        ]
        top = proj[-1]
        b, c, h, w = top.shape
        pos = sincos_pos_embed_2d(h, w, c, self.pe_temperature, top.device,
                                  top.dtype, self.pe_order)
        tokens = self.aifi(top.flatten(2).transpose(1, 2), pos)
        proj[-1] = tokens.transpose(1, 2).reshape(b, c, h, w)

        # top-down: inner[0] is the current coarsest fused map
        inner = [proj[-1]]
        for k in range(self.num_levels - 1):
            low = proj[-2 - k]
            high = self.lateral_convs[k](inner[0])
            inner[0] = high
            # size= instead of scale_factor=2 so odd sizes line up
            up = F.interpolate(high, size=low.shape[-2:], mode='nearest')
            inner.insert(0, self.fpn_blocks[k](torch.cat([up, low], 1)))

        # bottom-up
        outs = [inner[0]]
        for k in range(self.num_levels - 1):
            down = self.downsample_convs[k](outs[-1])
            outs.append(self.pan_blocks[k](torch.cat([down, inner[k + 1]], 1)))
        return tuple(outs)
