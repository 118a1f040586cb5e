"""PSALM: prototype-semantic alignment between neck features and class
prototypes, in both directions."""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule

from engine_plugins.registry import MODELS


@MODELS.register_module()
class PSALMFusion(BaseModule):
    """Refine the class prototypes from the image, then gate each level's
    features by how well each pixel matches its best prototype.

    1. *Image-guided prototype refinement*: every level is projected to the
       prototype dimension ``D`` and average-pooled to ``pool_size^2``
       tokens; the ``K`` prototypes attend to all tokens (multi-head
       attention) and are updated residually: ``P' = LN(P + attn(P))``.
    2. *Prototype-guided feature modulation* (max-sigmoid attention): per
       pixel, ``g = sigmoid(scale * max_k cos(f, P'_k) + bias)`` and the
       level's features become ``x * g``.

    Prototypes are learnable embeddings (``num_classes`` x
    ``embed_dims``), or loaded from ``prototypes_file`` (a ``(K, D)``
    tensor saved with ``torch.save``, e.g. class-name embeddings) and kept
    frozen, so the class set can change without retraining the box branch.

    Args:
        in_channels: Channels of each neck level.
        num_classes: ``K`` for learnable prototypes (ignored with a file).
        embed_dims: ``D`` for learnable prototypes (ignored with a file).
        prototypes_file: Optional path of a ``(K, D)`` tensor.
        num_heads: Attention heads (must divide ``D``).
        pool_size: Tokens per side and level for the refinement.

    Example:
        >>> fusion = MODELS.build(dict(
        ...     type='PSALMFusion', in_channels=[64, 128, 256],
        ...     num_classes=80, embed_dims=64))
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 num_classes: int = 80,
                 embed_dims: int = 64,
                 prototypes_file: Optional[str] = None,
                 num_heads: int = 4,
                 pool_size: int = 3,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if prototypes_file is not None:
            protos = torch.load(prototypes_file, map_location='cpu')
            if not (isinstance(protos, torch.Tensor) and protos.dim() == 2):
                raise ValueError(
                    f'{prototypes_file}: expected a (K, D) tensor, got '
                    f'{getattr(protos, "shape", type(protos))}')
            self.register_buffer('base_prototypes', protos.float())
        else:
            self.base_prototypes = nn.Parameter(
                torch.randn(num_classes, embed_dims) * 0.02)
        dims = self.base_prototypes.shape[1]
        if dims % num_heads:
            raise ValueError(f'embed_dims {dims} is not divisible by '
                             f'num_heads {num_heads}')
        self.pool_size = pool_size
        self.projections = nn.ModuleList(
            nn.Conv2d(c, dims, 1) for c in in_channels)
        self.attention = nn.MultiheadAttention(
            dims, num_heads, batch_first=True)
        self.norm = nn.LayerNorm(dims)
        self.gate_scale = nn.Parameter(torch.ones(len(in_channels)))
        self.gate_bias = nn.Parameter(torch.zeros(len(in_channels)))

    @property
    def num_classes(self) -> int:
        return self.base_prototypes.shape[0]

    @property
    def embed_dims(self) -> int:
        return self.base_prototypes.shape[1]

    def forward(self, feats: Sequence[torch.Tensor]
                ) -> Tuple[List[torch.Tensor], torch.Tensor]:
        """Return the modulated features and ``(B, K, D)`` prototypes."""
        projected = [proj(x) for proj, x in zip(self.projections, feats)]
        tokens = torch.cat([
            F.adaptive_avg_pool2d(p, self.pool_size).flatten(2).transpose(
                1, 2) for p in projected
        ], 1)
        base = self.base_prototypes.expand(feats[0].shape[0], -1, -1)
        update, _ = self.attention(base, tokens, tokens, need_weights=False)
        prototypes = self.norm(base + update)
        unit = F.normalize(prototypes, dim=-1)
        outs = []
        for i, (x, p) in enumerate(zip(feats, projected)):
            cos = torch.einsum('bdhw,bkd->bkhw', F.normalize(p, dim=1), unit)
            gate = torch.sigmoid(self.gate_scale[i] * cos.amax(1, True) +
                                 self.gate_bias[i])
            outs.append(x * gate)
        return outs, prototypes
