"""DualFFN audio-token language model (Higgs-Audio-style), plain PyTorch.

A Llama decoder (RMSNorm, RoPE, SwiGLU, GQA from ``transformers``) whose
layers in ``dual_ffn_layers`` route audio-out positions through their own
norms and FFN. Audio frames are embedded as the sum of their 8 codebook
embeddings (one table, codebook ``k`` at offset ``k * 1026``); a text head
scores every position and an audio head scores all codebooks at audio-out
positions.
"""
from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn
from transformers import LlamaConfig
from transformers.models.llama.modeling_llama import (LlamaRMSNorm,
                                                      LlamaRotaryEmbedding)

from engine_plugins.structures import (AUDIO_VOCAB, NUM_CODEBOOKS, STREAM_BOS,
                                       STREAM_EOS, build_audio_stream,
                                       stream_to_codes)
from .dual_ffn import DualFFNDecoderLayer
from .merge import TEXT, merge_input_ids_with_audio_features


class DualFFNAudioLMCore(nn.Module):
    """The network; :class:`DualFFNAudioLM` adds losses and LoRA.

    Args:
        vocab_size, hidden_size, intermediate_size, num_hidden_layers,
        num_attention_heads, num_key_value_heads, head_dim, rms_norm_eps,
        rope_parameters, max_position_embeddings: Llama sizes.
        dual_ffn_layers: Indices of the DualFFN layers.
        audio_out_token_id: Id of ``<|AUDIO_OUT|>``.
        audio_in_token_id: Id of ``<|AUDIO|>``.
        num_codebooks: Codebooks per frame (8).
        audio_vocab: Classes per codebook (1026).
        attn_implementation: ``'sdpa'`` or ``'eager'``.
        audio_in_dual_ffn: Route audio-in positions through the audio
            FFN too. Default False, as in Higgs Audio, whose DualFFN
            serves audio-out positions only.

    Example:
        >>> from engine_plugins.models.audio import AUDIO_LM_PRESETS
        >>> core = DualFFNAudioLMCore(**AUDIO_LM_PRESETS['tiny'],
        ...     audio_out_token_id=260, audio_in_token_id=259)
    """

    def __init__(self,
                 vocab_size: int,
                 hidden_size: int,
                 intermediate_size: int,
                 num_hidden_layers: int,
                 num_attention_heads: int,
                 num_key_value_heads: int,
                 dual_ffn_layers: Sequence[int],
                 audio_out_token_id: int,
                 audio_in_token_id: int,
                 head_dim: Optional[int] = None,
                 rms_norm_eps: float = 1e-5,
                 rope_parameters: Optional[dict] = None,
                 max_position_embeddings: int = 2048,
                 num_codebooks: int = NUM_CODEBOOKS,
                 audio_vocab: int = AUDIO_VOCAB,
                 attn_implementation: str = 'sdpa',
                 audio_in_dual_ffn: bool = False) -> None:
        super().__init__()
        bad = [i for i in dual_ffn_layers if not 0 <= i < num_hidden_layers]
        if bad:
            raise ValueError(f'dual_ffn_layers {bad} are outside the '
                             f'{num_hidden_layers} layers')
        if attn_implementation not in ('sdpa', 'eager'):
            raise ValueError("attn_implementation must be 'sdpa' or "
                             f"'eager', got {attn_implementation!r}")
        self.config = LlamaConfig(
            vocab_size=vocab_size,
            hidden_size=hidden_size,
            intermediate_size=intermediate_size,
            num_hidden_layers=num_hidden_layers,
            num_attention_heads=num_attention_heads,
            num_key_value_heads=num_key_value_heads,
            head_dim=head_dim or hidden_size // num_attention_heads,
            rms_norm_eps=rms_norm_eps,
            rope_parameters=rope_parameters
            or dict(rope_type='default', rope_theta=10000.0),
            max_position_embeddings=max_position_embeddings)
        self.config._attn_implementation = attn_implementation
        self.audio_out_token_id = audio_out_token_id
        self.audio_in_token_id = audio_in_token_id
        self.audio_in_dual_ffn = audio_in_dual_ffn
        self.num_codebooks = num_codebooks
        self.audio_vocab = audio_vocab
        self.dual_ffn_layers = sorted(set(dual_ffn_layers))
        self.embed_tokens = nn.Embedding(vocab_size, hidden_size)
        self.audio_codebook_embeddings = nn.Embedding(
            num_codebooks * audio_vocab, hidden_size)
        self.layers = nn.ModuleList(
            DualFFNDecoderLayer(self.config, i, i in self.dual_ffn_layers)
            for i in range(num_hidden_layers))
        self.norm = LlamaRMSNorm(hidden_size, rms_norm_eps)
        self.rotary_emb = LlamaRotaryEmbedding(self.config)
        self.text_lm_head = nn.Linear(hidden_size, vocab_size, bias=False)
        self.audio_lm_head = nn.Linear(
            hidden_size, num_codebooks * audio_vocab, bias=False)
        self.register_buffer(
            'codebook_offsets',
            torch.arange(num_codebooks)[:, None] * audio_vocab,
            persistent=False)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        # Llama's initialisation: N(0, 0.02), zero biases.
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
            if getattr(module, 'bias', None) is not None:
                nn.init.zeros_(module.bias)

    def embed_audio(self, codes: torch.Tensor) -> torch.Tensor:
        """``(K, N)`` codes -> ``(N, H)``, the sum over codebooks."""
        if codes.shape[0] != self.num_codebooks:
            raise ValueError(f'audio codes must have {self.num_codebooks} '
                             f'codebook rows, got {tuple(codes.shape)}')
        return self.audio_codebook_embeddings(codes +
                                              self.codebook_offsets).sum(0)

    def _attention_mask(self, valid: torch.Tensor,
                        dtype: torch.dtype) -> torch.Tensor:
        length = valid.shape[1]
        causal = torch.ones(
            length, length, dtype=torch.bool, device=valid.device).tril()
        allowed = causal[None, None] & valid[:, None, None, :].bool()
        if self.config._attn_implementation == 'sdpa':
            return allowed  # bool: True = attend
        return torch.zeros(
            allowed.shape, dtype=dtype, device=valid.device).masked_fill(
                ~allowed, torch.finfo(dtype).min)

    def forward(self,
                input_ids: torch.Tensor,
                attention_mask: torch.Tensor,
                label_ids: Optional[torch.Tensor] = None,
                audio_out_ids: Optional[torch.Tensor] = None,
                audio_out_ids_start: Optional[torch.Tensor] = None,
                audio_in_ids: Optional[torch.Tensor] = None,
                audio_in_ids_start: Optional[torch.Tensor] = None
                ) -> Dict[str, torch.Tensor]:
        """Returns ``logits (B, L, V)``, ``audio_logits (N_out, K, 1026)``,
        ``expanded_labels (B, L)`` (None without ``label_ids``),
        ``attention_mask`` and ``audio_out_mask`` of the expanded batch."""
        n_out = 0 if audio_out_ids is None else audio_out_ids.shape[1]
        n_in = 0 if audio_in_ids is None else audio_in_ids.shape[1]
        merged = merge_input_ids_with_audio_features(
            input_ids, attention_mask, self.audio_out_token_id,
            self.audio_in_token_id, label_ids, audio_out_ids_start, n_out,
            audio_in_ids_start, n_in)
        text_emb = self.embed_tokens(input_ids)
        hidden = text_emb.new_zeros(*merged.kind.shape, text_emb.shape[-1])
        rows = torch.arange(
            len(input_ids), device=input_ids.device)[:, None].expand_as(
                merged.kind)
        is_text = (merged.kind == TEXT) & merged.attention_mask.bool()
        hidden[is_text] = text_emb[rows[is_text], merged.index[is_text]]
        out_mask, in_mask = merged.audio_out_mask, merged.audio_in_mask
        if n_out:
            hidden[out_mask] = self.embed_audio(audio_out_ids)[
                merged.index[out_mask]].to(hidden.dtype)
        if n_in:
            hidden[in_mask] = self.embed_audio(audio_in_ids)[
                merged.index[in_mask]].to(hidden.dtype)
        position_embeddings = self.rotary_emb(hidden, merged.position_ids)
        mask = self._attention_mask(merged.attention_mask, hidden.dtype)
        route = out_mask | in_mask if self.audio_in_dual_ffn else out_mask
        for layer in self.layers:
            hidden = layer(hidden, position_embeddings, mask, route)
        hidden = self.norm(hidden)
        # Audio-out states in frame order (the order of label_audio_ids).
        audio_hidden = hidden.new_zeros(n_out, hidden.shape[-1])
        audio_hidden[merged.index[out_mask]] = hidden[out_mask]
        audio_logits = self.audio_lm_head(audio_hidden).view(
            n_out, self.num_codebooks, self.audio_vocab)
        return dict(
            logits=self.text_lm_head(hidden),
            audio_logits=audio_logits,
            expanded_labels=merged.expanded_labels,
            attention_mask=merged.attention_mask,
            audio_out_mask=out_mask)

    @torch.no_grad()
    def generate_audio(
            self,
            prompt_ids: torch.Tensor,
            max_frames: int = 256,
            audio_in: Sequence[torch.Tensor] = ()) -> torch.Tensor:
        """Greedy audio continuation of one prompt.

        Args:
            prompt_ids: ``(L,)`` text ending with ``<|AUDIO_OUT|>``.
            max_frames: Upper bound on generated frames.
            audio_in: ``(K, T)`` codes for each ``<|AUDIO|>`` of the prompt.

        Returns:
            ``(K, T)`` codes (delay pattern removed). The delay pattern is
            enforced while decoding: codebook ``k`` is BOS before its
            ``k``-th step and ends one step after codebook ``k - 1``.
        """
        if int(prompt_ids[-1]) != self.audio_out_token_id:
            raise ValueError('the prompt must end with <|AUDIO_OUT|>')
        k = self.num_codebooks
        ids = prompt_ids[None]
        ones = torch.ones_like(ids)
        stream = ids.new_full((k, 1), STREAM_BOS)
        start = ids.new_zeros(1)
        audio_in_ids = audio_in_start = None
        if len(audio_in):
            streams = [build_audio_stream(c) for c in audio_in]
            lengths = torch.tensor([s.shape[1] for s in streams])
            audio_in_ids = torch.cat(streams, 1).to(ids.device)
            audio_in_start = (torch.cumsum(lengths, 0) -
                              lengths).to(ids.device)
        for step in range(max_frames + k):
            out = self(ids, ones, audio_out_ids=stream,
                       audio_out_ids_start=start, audio_in_ids=audio_in_ids,
                       audio_in_ids_start=audio_in_start)
            nxt = out['audio_logits'][-1].argmax(-1)
            nxt[step + 1:] = STREAM_BOS  # codebooks not started yet
            ended = torch.cat([nxt.new_zeros(1, dtype=torch.bool),
                               stream[:-1, -1] == STREAM_EOS])
            nxt[ended] = STREAM_EOS
            stream = torch.cat([stream, nxt[:, None]], dim=1)
            if bool((nxt == STREAM_EOS).all()):
                break
        else:
            stream = torch.cat(
                [stream, stream.new_full((k, 1), STREAM_EOS)], dim=1)
        return stream_to_codes(stream)
