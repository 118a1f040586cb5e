"""Llama decoder layer with an optional second (audio) FFN path.

Built from ``transformers``' Llama parts (``LlamaAttention``,
``LlamaMLP``, ``LlamaRMSNorm``); only the routing is ours, because
``LlamaDecoderLayer`` has a single FFN. Attention is shared; in a DualFFN
layer the positions in ``audio_mask`` use ``audio_input_layernorm``,
``audio_post_attention_layernorm`` and ``audio_mlp`` instead of the text
ones. Module names follow the Higgs Audio checkpoint layout so its keys
load one to one (see :mod:`.weights`).
"""
from typing import Callable, Optional, Tuple

import torch
import torch.nn as nn
from transformers import LlamaConfig
from transformers.models.llama.modeling_llama import (LlamaAttention, LlamaMLP,
                                                      LlamaRMSNorm)


def _route(x: torch.Tensor, mask: torch.Tensor, text: Callable,
           audio: Callable) -> torch.Tensor:
    """``text`` on positions outside ``mask``, ``audio`` inside.

    Each module sees only its own positions (no wasted FFN compute); both
    are always called, even on zero rows, so every parameter stays in the
    graph (DDP needs no ``find_unused_parameters``).
    """
    out = torch.empty_like(x)
    out[~mask] = text(x[~mask]).to(x.dtype)
    out[mask] = audio(x[mask]).to(x.dtype)
    return out


class DualFFNDecoderLayer(nn.Module):
    """One pre-norm decoder layer.

    Args:
        config: The Llama configuration (sizes, GQA heads, eps).
        layer_idx: Index of the layer (used by the attention cache).
        dual_ffn: Give audio positions their own norms and FFN.

    Example:
        >>> layer = DualFFNDecoderLayer(LlamaConfig(hidden_size=64,
        ...     intermediate_size=128, num_attention_heads=4,
        ...     num_key_value_heads=2), 0, dual_ffn=True)
    """

    def __init__(self,
                 config: LlamaConfig,
                 layer_idx: int,
                 dual_ffn: bool = False) -> None:
        super().__init__()
        self.dual_ffn = dual_ffn
        self.self_attn = LlamaAttention(config, layer_idx)
        self.mlp = LlamaMLP(config)
        self.input_layernorm = LlamaRMSNorm(config.hidden_size,
                                            config.rms_norm_eps)
        self.post_attention_layernorm = LlamaRMSNorm(config.hidden_size,
                                                     config.rms_norm_eps)
        if dual_ffn:
            self.audio_mlp = LlamaMLP(config)
            self.audio_input_layernorm = LlamaRMSNorm(
                config.hidden_size, config.rms_norm_eps)
            self.audio_post_attention_layernorm = LlamaRMSNorm(
                config.hidden_size, config.rms_norm_eps)

    def forward(self, hidden: torch.Tensor,
                position_embeddings: Tuple[torch.Tensor, torch.Tensor],
                attention_mask: torch.Tensor,
                audio_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Args: ``hidden (B, L, H)``; ``attention_mask (B, 1, L, L)``
        additive; ``audio_mask (B, L)`` bool. Returns ``(B, L, H)``."""
        dual = self.dual_ffn and audio_mask is not None
        if dual:
            x = _route(hidden, audio_mask, self.input_layernorm,
                       self.audio_input_layernorm)
        else:
            x = self.input_layernorm(hidden)
        attn, _ = self.self_attn(x, position_embeddings, attention_mask)
        hidden = hidden + attn
        if dual:
            return hidden + _route(
                hidden, audio_mask,
                lambda t: self.mlp(self.post_attention_layernorm(t)),
                lambda t: self.audio_mlp(
                    self.audio_post_attention_layernorm(t)))
        return hidden + self.mlp(self.post_attention_layernorm(hidden))
