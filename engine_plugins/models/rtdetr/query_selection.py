"""RT-DETR's top-k query selection from the encoder memory."""
import math
from typing import List, NamedTuple, Tuple

import torch
from mmdet.models.layers.transformer.utils import MLP
from torch import nn


class SelectedQueries(NamedTuple):
    """The top-k memory positions and what the encoder heads say of them.

    Attributes:
        content: ``(B, K, C)`` projected memory at the selected positions,
            detached: the decoder's initial content queries.
        ref_boxes_unact: ``(B, K, 4)`` their boxes (inverse-sigmoid
            cxcywh), detached: the decoder's initial reference boxes.
        enc_logits: ``(B, K, num_classes)`` encoder class logits.
        enc_boxes: ``(B, K, 4)`` encoder boxes, normalized cxcywh; these
            two carry gradients, for the encoder's auxiliary loss.
    """
    content: torch.Tensor
    ref_boxes_unact: torch.Tensor
    enc_logits: torch.Tensor
    enc_boxes: torch.Tensor


def grid_anchors(
        shapes: List[Tuple[int, int]],
        device: torch.device,
        base_size: float = 0.05,
        eps: float = 0.01,
        dtype: torch.dtype = torch.float32
) -> Tuple[torch.Tensor, torch.Tensor]:
    """One anchor box per memory position: the cell centre, size
    ``base_size * 2**level``, as inverse-sigmoid normalized cxcywh.

    mmdet's ``DeformableDETR.gen_encoder_output_proposals`` builds the same
    boxes but is a detector method tied to padding masks; RT-DETR has no
    masks (boxes are normalized to the padded batch).

    Computed in float32, or in float64 when ``dtype`` is float64.

    Returns:
        ``(S, 4)`` anchors (``inf`` where any coordinate is outside
        ``(eps, 1 - eps)``) and the ``(S, 1)`` bool valid mask.
    """
    compute = torch.float64 if dtype == torch.float64 else torch.float32
    anchors = []
    for level, (h, w) in enumerate(shapes):
        ys = (torch.arange(h, device=device, dtype=compute) + 0.5) / h
        xs = (torch.arange(w, device=device, dtype=compute) + 0.5) / w
        y, x = torch.meshgrid(ys, xs, indexing='ij')
        wh = torch.full_like(x, base_size * 2.0**level)
        anchors.append(torch.stack([x, y, wh, wh], -1).reshape(-1, 4))
    anchors = torch.cat(anchors)
    valid = ((anchors > eps) & (anchors < 1 - eps)).all(-1, keepdim=True)
    unact = torch.log(anchors / (1 - anchors))
    return unact.masked_fill(~valid, math.inf), valid


class QuerySelection(nn.Module):
    """Scores every memory position with an encoder class head and keeps
    the ``num_queries`` best as the decoder's initial queries.

    Args:
        num_classes: Number of classes.
        embed_dims: Memory width.
        num_queries: How many positions to keep (300).
    """

    def __init__(self, num_classes: int, embed_dims: int,
                 num_queries: int) -> None:
        super().__init__()
        self.num_queries = num_queries
        self.memory_proj = nn.Sequential(
            nn.Linear(embed_dims, embed_dims), nn.LayerNorm(embed_dims))
        self.score_head = nn.Linear(embed_dims, num_classes)
        self.bbox_head = MLP(embed_dims, embed_dims, 4, 3)

    def forward(self, memory: torch.Tensor,
                shapes: List[Tuple[int, int]]) -> SelectedQueries:
        """Select from ``memory`` ``(B, S, C)``, the flattened levels of
        sizes ``shapes``."""
        if memory.shape[1] < self.num_queries:
            raise ValueError(
                f'QuerySelection: the encoder memory has {memory.shape[1]} '
                f'positions for {self.num_queries} queries; use larger '
                'inputs or fewer num_queries')
        anchors, valid = grid_anchors(
            shapes, memory.device, dtype=memory.dtype)
        memory = self.memory_proj(memory * valid.to(memory.dtype))
        logits = self.score_head(memory)
        boxes_unact = self.bbox_head(memory) + anchors.to(memory.dtype)
        index = logits.max(-1).values.topk(self.num_queries, dim=1).indices

        def take(x: torch.Tensor) -> torch.Tensor:
            return x.gather(1, index[..., None].expand(-1, -1, x.shape[-1]))

        boxes_unact = take(boxes_unact)
        return SelectedQueries(
            content=take(memory).detach(),
            ref_boxes_unact=boxes_unact.detach(),
            enc_logits=take(logits),
            enc_boxes=boxes_unact.sigmoid())
