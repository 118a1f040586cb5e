"""Building blocks of the RT-DETR hybrid encoder.

mmdet's ``CSPLayer`` is the CSPDarknet form (a bottleneck stack with
residuals and a concatenation of the two branches); RT-DETR's fusion block
*adds* a RepVGG stack branch to a plain 1x1 branch, so ``CSPRepLayer`` and
``RepVGGBlock`` are written here on mmcv's ``ConvModule``. mmdet's
``DetrTransformerEncoderLayer`` has the AIFI structure but routes through
mmcv's ``MultiheadAttention``, which transposes to sequence-first and asks
torch for the attention weights (no fused attention kernel); ``AIFILayer``
calls ``torch.nn.MultiheadAttention(batch_first=True)`` directly and reuses
mmcv's ``FFN``.
"""
from typing import Optional, Union

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule, build_activation_layer, build_norm_layer
from mmcv.cnn.bricks.transformer import FFN

_ACT_NAMES = {'gelu': 'GELU', 'relu': 'ReLU', 'silu': 'SiLU'}


def sincos_pos_embed_2d(height: int,
                        width: int,
                        embed_dim: int,
                        temperature: float = 10000.,
                        device: Optional[torch.device] = None,
                        dtype: torch.dtype = torch.float32,
                        order: str = 'wh') -> torch.Tensor:
    """2-D sine-cosine position embedding of a ``height x width`` grid.

    With ``d = embed_dim // 4`` and ``omega_i = temperature ** (-i / d)``,
    the cell at row ``h``, column ``w`` gets
    ``[sin(w * omega), cos(w * omega), sin(h * omega), cos(h * omega)]``
    (``order='wh'``) or
    ``[sin(h * omega), cos(h * omega), sin(w * omega), cos(w * omega)]``
    (``order='hw'``: transformers' ``RTDetrModel``, and on square maps the
    original RT-DETR, whose meshgrid swaps the two). Rows are in row-major
    order, matching ``x.flatten(2)`` of a ``(B, C, H, W)`` map.

    Args:
        height: Grid rows.
        width: Grid columns.
        embed_dim: Embedding size; must be divisible by 4.
        temperature: Frequency base.
        device: Device of the result.
        dtype: Dtype of the result (computed in float32, or float64 for
            a float64 result, then cast).
        order: Which coordinate fills the first half: ``'wh'`` (column)
            or ``'hw'`` (row).

    Returns:
        Tensor of shape ``(height * width, embed_dim)``.
    """
    if embed_dim % 4 != 0:
        raise ValueError('sincos_pos_embed_2d needs embed_dim divisible by '
                         f'4, got {embed_dim}')
    if order not in ('wh', 'hw'):
        raise ValueError(f"sincos_pos_embed_2d order must be 'wh' or 'hw', "
                         f'got {order!r}')
    pos_dim = embed_dim // 4
    compute = torch.float64 if dtype == torch.float64 else torch.float32
    omega = torch.arange(pos_dim, device=device, dtype=compute)
    omega = 1. / temperature**(omega / pos_dim)
    rows = torch.arange(height, device=device, dtype=compute)
    cols = torch.arange(width, device=device, dtype=compute)
    grid_h, grid_w = torch.meshgrid(rows, cols, indexing='ij')
    out_w = grid_w.reshape(-1, 1) * omega
    out_h = grid_h.reshape(-1, 1) * omega
    first, second = (out_w, out_h) if order == 'wh' else (out_h, out_w)
    embed = [first.sin(), first.cos(), second.sin(), second.cos()]
    return torch.cat(embed, 1).to(dtype)


class RepVGGBlock(nn.Module):
    """``act(BN(conv3x3(x)) + BN(conv1x1(x)))``, the training-time form.

    RT-DETR's block has no identity branch. Both convs keep ``channels``.
    """

    def __init__(self,
                 channels: int,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='SiLU')) -> None:
        super().__init__()
        self.conv3x3 = ConvModule(
            channels, channels, 3, padding=1, norm_cfg=norm_cfg,
            act_cfg=None)
        self.conv1x1 = ConvModule(
            channels, channels, 1, norm_cfg=norm_cfg, act_cfg=None)
        self.act = build_activation_layer(act_cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv3x3(x) + self.conv1x1(x))


class CSPRepLayer(nn.Module):
    """``conv3(blocks(conv1(x)) + conv2(x))`` with RepVGG blocks.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        num_blocks: RepVGG blocks on the first branch.
        expansion: Hidden channels are ``int(out_channels * expansion)``;
            ``conv3`` is an identity when they equal ``out_channels``.
        norm_cfg: Norm of every conv.
        act_cfg: Activation of every conv and block.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 num_blocks: int = 3,
                 expansion: float = 1.0,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='SiLU')) -> None:
        super().__init__()
        hidden = int(out_channels * expansion)
        cfg = dict(norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.conv1 = ConvModule(in_channels, hidden, 1, **cfg)
        self.conv2 = ConvModule(in_channels, hidden, 1, **cfg)
        self.blocks = nn.Sequential(
            *[RepVGGBlock(hidden, **cfg) for _ in range(num_blocks)])
        self.conv3 = (
            ConvModule(hidden, out_channels, 1, **cfg)
            if hidden != out_channels else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3(self.blocks(self.conv1(x)) + self.conv2(x))


class AIFILayer(nn.Module):
    """One post-norm transformer encoder layer (RT-DETR's AIFI).

    ``x = norm1(x + drop(attn(q=x+pos, k=x+pos, v=x)))`` then
    ``x = norm2(x + drop(fc2(drop(act(fc1(x))))))``. The position
    embedding reaches queries and keys only.

    Args:
        embed_dim: Token size.
        num_heads: Attention heads.
        ffn_dim: Hidden size of the feed-forward network.
        dropout: Dropout of attention weights, FFN and both residuals.
        act: Activation of the FFN: a name ('gelu', 'relu', 'silu') or an
            mmcv activation config.
    """

    def __init__(self,
                 embed_dim: int,
                 num_heads: int = 8,
                 ffn_dim: int = 1024,
                 dropout: float = 0.0,
                 act: Union[str, dict] = 'gelu') -> None:
        super().__init__()
        if isinstance(act, str):
            if act.lower() not in _ACT_NAMES:
                raise ValueError(f'AIFI activation {act!r} is unknown; use '
                                 f'one of {sorted(_ACT_NAMES)} or a config '
                                 'dict')
            act = dict(type=_ACT_NAMES[act.lower()])
        self.self_attn = nn.MultiheadAttention(
            embed_dim, num_heads, dropout=dropout, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.norm1 = build_norm_layer(dict(type='LN'), embed_dim)[1]
        # mmcv's FFN: fc1 -> act -> drop -> fc2 -> drop, plus the residual
        self.ffn = FFN(
            embed_dims=embed_dim,
            feedforward_channels=ffn_dim,
            num_fcs=2,
            act_cfg=act,
            ffn_drop=dropout)
        self.norm2 = build_norm_layer(dict(type='LN'), embed_dim)[1]

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """Encode tokens.

        Args:
            x: Tokens ``(B, N, C)``.
            pos: Position embedding ``(N, C)`` or ``(B, N, C)``.

        Returns:
            Tokens ``(B, N, C)``.
        """
        q = k = x + pos
        attn = self.self_attn(q, k, x, need_weights=False)[0]
        x = self.norm1(x + self.dropout(attn))
        return self.norm2(self.ffn(x))
