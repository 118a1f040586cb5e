"""RT-DETR's decoder: query selection, denoising and iterative refinement."""
import copy
from typing import List, NamedTuple, Optional, Sequence, Tuple

import torch
from mmcv.cnn import ConvModule
from mmdet.models.layers.transformer import \
    DeformableDetrTransformerDecoderLayer
from mmdet.models.layers.transformer.utils import MLP, inverse_sigmoid
from mmengine.model import BaseModule, bias_init_with_prob
from torch import nn

from engine_plugins.registry import MODELS
from .denoising import DenoisingGroups, DenoisingQueryGenerator
from .query_selection import QuerySelection


class DecoderOutputs(NamedTuple):
    """Everything the criterion scores, batch-first.

    Attributes:
        logits: ``(L, B, Q, num_classes)`` per decoder layer (training: all
            layers; inference: the ``eval_idx`` layer only).
        boxes: ``(L, B, Q, 4)`` normalized cxcywh.
        enc_logits, enc_boxes: ``(B, Q, ...)`` the encoder's top-k.
        dn_logits, dn_boxes: ``(L, B, N_dn, ...)`` denoising queries, or
            None.
        dn: The denoising groups (gt slots, mask), or None.
    """
    logits: torch.Tensor
    boxes: torch.Tensor
    enc_logits: torch.Tensor
    enc_boxes: torch.Tensor
    dn_logits: Optional[torch.Tensor] = None
    dn_boxes: Optional[torch.Tensor] = None
    dn: Optional[DenoisingGroups] = None


@MODELS.register_module()
class RTDETRDecoder(BaseModule):
    """Top-k query selection, then decoder layers of self-attention and
    multi-scale deformable cross-attention (mmdet's Deformable-DETR layer
    on mmcv's ``MultiScaleDeformableAttention``), each refining the
    reference boxes of the one before.

    Refinement follows RT-DETR: layer ``i`` predicts a delta on the
    inverse-sigmoid of its reference boxes; the next layer gets the result
    detached, while the box scored by the loss adds layer ``i``'s delta to
    layer ``i - 1``'s undetached boxes, so each layer's loss also trains
    the layer before.

    Args:
        num_classes: Number of classes.
        in_channels: Channels of each encoder level.
        embed_dims: Query width.
        num_queries: Queries kept by top-k selection (300).
        num_layers: Decoder layers (6).
        eval_idx: Layer whose predictions are used at inference (-1: the
            last); later layers are skipped there.
        num_heads, num_points, ffn_channels, dropout: Layer settings.
        denoising: ``DenoisingQueryGenerator`` arguments (``num_denoising``,
            ``label_noise_ratio``, ``box_noise_scale``); None turns
            denoising off.

    Example:
        >>> decoder = MODELS.build(dict(
        ...     type='RTDETRDecoder', num_classes=80,
        ...     in_channels=(256, 256, 256), num_queries=300,
        ...     denoising=dict(num_denoising=100)))
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: Sequence[int] = (256, 256, 256),
                 embed_dims: int = 256,
                 num_queries: int = 300,
                 num_layers: int = 6,
                 eval_idx: int = -1,
                 num_heads: int = 8,
                 num_points: int = 4,
                 ffn_channels: int = 1024,
                 dropout: float = 0.0,
                 denoising: Optional[dict] = dict(
                     num_denoising=100,
                     label_noise_ratio=0.5,
                     box_noise_scale=1.0),
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not -num_layers <= eval_idx < num_layers:
            raise ValueError(f'RTDETRDecoder: eval_idx={eval_idx} is not a '
                             f'layer index for num_layers={num_layers}')
        self.num_classes = num_classes
        self.num_queries = num_queries
        self.num_layers = num_layers
        self.eval_idx = eval_idx % num_layers
        self.input_proj = nn.ModuleList(
            ConvModule(c, embed_dims, 1, norm_cfg=dict(type='BN'),
                       act_cfg=None) for c in in_channels)
        self.query_selection = QuerySelection(num_classes, embed_dims,
                                              num_queries)
        layer_cfg = dict(
            self_attn_cfg=dict(
                embed_dims=embed_dims, num_heads=num_heads, dropout=dropout),
            cross_attn_cfg=dict(
                embed_dims=embed_dims,
                num_heads=num_heads,
                num_levels=len(in_channels),
                num_points=num_points,
                dropout=dropout),
            ffn_cfg=dict(
                embed_dims=embed_dims,
                feedforward_channels=ffn_channels,
                ffn_drop=dropout))
        # Built one by one (not deep copies) so each layer draws its own
        # initial weights; the layer mutates its cfg dicts, hence the copy.
        self.layers = nn.ModuleList(
            DeformableDetrTransformerDecoderLayer(**copy.deepcopy(layer_cfg))
            for _ in range(num_layers))
        self.query_pos_head = MLP(4, 2 * embed_dims, embed_dims, 2)
        self.score_heads = nn.ModuleList(
            nn.Linear(embed_dims, num_classes) for _ in range(num_layers))
        self.bbox_heads = nn.ModuleList(
            MLP(embed_dims, embed_dims, 4, 3) for _ in range(num_layers))
        self.denoising = (
            DenoisingQueryGenerator(num_classes, embed_dims, **denoising)
            if denoising else None)
        self._init_heads()

    def _init_heads(self) -> None:
        # Class heads start at p = 0.01 (focal-loss prior); box deltas at 0,
        # so each layer starts from its reference boxes.
        bias = bias_init_with_prob(0.01)
        heads = [self.query_selection.score_head, *self.score_heads]
        for head in heads:
            nn.init.constant_(head.bias, bias)
        for mlp in [self.query_selection.bbox_head, *self.bbox_heads]:
            nn.init.zeros_(mlp.layers[-1].weight)
            nn.init.zeros_(mlp.layers[-1].bias)

    def _flatten(self, feats: Sequence[torch.Tensor]):
        if len(feats) != len(self.input_proj):
            raise ValueError(
                f'RTDETRDecoder: got {len(feats)} feature levels, built for '
                f'{len(self.input_proj)} (in_channels)')
        feats = [proj(x) for proj, x in zip(self.input_proj, feats)]
        shapes: List[Tuple[int, int]] = [tuple(x.shape[-2:]) for x in feats]
        memory = torch.cat([x.flatten(2).transpose(1, 2) for x in feats], 1)
        spatial_shapes = torch.as_tensor(
            shapes, dtype=torch.long, device=memory.device)
        sizes = spatial_shapes.prod(1)
        level_start = torch.cat([sizes.new_zeros(1), sizes.cumsum(0)[:-1]])
        return memory, shapes, spatial_shapes, level_start

    def forward(
        self,
        feats: Sequence[torch.Tensor],
        gt_labels: Optional[Sequence[torch.Tensor]] = None,
        gt_boxes: Optional[Sequence[torch.Tensor]] = None
    ) -> DecoderOutputs:
        """Decode ``feats`` (encoder levels, ``(B, C, H_i, W_i)``).

        In training, ``gt_labels`` / ``gt_boxes`` (normalized cxcywh) feed
        the denoising queries.
        """
        memory, shapes, spatial_shapes, level_start = self._flatten(feats)
        selected = self.query_selection(memory, shapes)
        content, ref_unact = selected.content, selected.ref_boxes_unact
        dn = None
        if self.training and self.denoising is not None and gt_labels:
            dn = self.denoising(gt_labels, gt_boxes, self.num_queries)
        attn_mask = None
        if dn is not None:
            content = torch.cat([dn.label_queries.to(content.dtype), content],
                                1)
            ref_unact = torch.cat(
                [dn.ref_boxes_unact.to(ref_unact.dtype), ref_unact], 1)
            attn_mask = dn.attn_mask

        logits, boxes = self._refine(content, ref_unact.sigmoid(), memory,
                                     spatial_shapes, level_start, attn_mask)
        num_dn = 0 if dn is None else dn.ref_boxes_unact.shape[1]
        return DecoderOutputs(
            logits=logits[:, :, num_dn:],
            boxes=boxes[:, :, num_dn:],
            enc_logits=selected.enc_logits,
            enc_boxes=selected.enc_boxes,
            dn_logits=logits[:, :, :num_dn] if dn is not None else None,
            dn_boxes=boxes[:, :, :num_dn] if dn is not None else None,
            dn=dn)

    def _refine(self, query, ref, memory, spatial_shapes, level_start,
                attn_mask) -> Tuple[torch.Tensor, torch.Tensor]:
        num_levels = len(self.input_proj)
        logits, boxes = [], []
        prev_boxes = ref
        for i, layer in enumerate(self.layers):
            query = layer(
                query,
                query_pos=self.query_pos_head(ref),
                value=memory,
                self_attn_mask=attn_mask,
                reference_points=ref[:, :, None].expand(
                    -1, -1, num_levels, -1),
                spatial_shapes=spatial_shapes,
                level_start_index=level_start)
            delta = self.bbox_heads[i](query)
            new_ref = (delta + inverse_sigmoid(ref)).sigmoid()
            if self.training:
                logits.append(self.score_heads[i](query))
                boxes.append(new_ref if i == 0 else (
                    delta + inverse_sigmoid(prev_boxes)).sigmoid())
                prev_boxes, ref = new_ref, new_ref.detach()
            else:
                ref = new_ref
                if i == self.eval_idx:
                    logits.append(self.score_heads[i](query))
                    boxes.append(new_ref)
                    break
        return torch.stack(logits), torch.stack(boxes)
