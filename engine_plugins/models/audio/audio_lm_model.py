"""The registered DualFFN audio LM: losses, LoRA, weights, batch contract.
"""
import copy
import math
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModel

from engine_plugins.registry import MODELS
from engine_plugins.structures import AUDIO_VOCAB, IGNORE_INDEX
from .audio_lm import DualFFNAudioLMCore
from .lora import inject_lora
from .losses import audio_lm_losses
from .presets import AUDIO_LM_PRESETS
from .weights import load_weights, save_weights


@MODELS.register_module()
class DualFFNAudioLM(BaseModel):
    """Higgs-Audio-style LM trained on text and 8-codebook audio codes.

    Batch keys (see :func:`engine_plugins.datasets.audio_lm_collate`) are
    passed to ``forward`` under their own names; the preflight batch
    contract checks ``required_inputs`` at iteration 1, so a key filter
    that drops ``label_ids`` or ``audio_out_ids`` stops the run there.

    Args:
        size: A preset of :data:`AUDIO_LM_PRESETS` (``'tiny'``, ``'mid'``,
            ``'llama-3.2-3b'``).
        audio_out_token_id: Id of ``<|AUDIO_OUT|>`` in the tokenizer.
        audio_in_token_id: Id of ``<|AUDIO|>``.
        arch: Overrides of the preset (e.g. ``dual_ffn_layers``,
            ``vocab_size``).
        lora: ``dict(r, lora_alpha, lora_dropout, target_modules)``;
            ``None`` trains every parameter. Adapters are injected here,
            before the runner builds the optimizer.
        pretrained: Local safetensors directory loaded before LoRA.
        pretrained_format: ``'native'`` or ``'higgs'``.
        text_loss_weight: Weight of ``loss_text``.
        audio_loss_weight: Weight of ``loss_audio``.
        data_preprocessor: mmengine data preprocessor config.

    Example:
        >>> model = dict(
        ...     type='DualFFNAudioLM', size='tiny', audio_out_token_id=260,
        ...     audio_in_token_id=259,
        ...     lora=dict(r=16, lora_alpha=32, lora_dropout=0.05,
        ...               target_modules=dict(
        ...                   audio_ffn=r'layers\\.\\d+\\.audio_mlp\\..*')))
    """

    loss_keys = ('loss_text', 'loss_audio')
    required_inputs = ('input_ids', 'attention_mask', 'label_ids',
                       'audio_out_ids', 'audio_out_ids_start',
                       'label_audio_ids')
    optional_inputs = ('audio_in_ids', 'audio_in_ids_start')

    def __init__(self,
                 audio_out_token_id: int,
                 audio_in_token_id: int,
                 size: str = 'tiny',
                 arch: Optional[dict] = None,
                 lora: Optional[dict] = None,
                 pretrained: Optional[str] = None,
                 pretrained_format: str = 'native',
                 text_loss_weight: float = 1.0,
                 audio_loss_weight: float = 1.0,
                 data_preprocessor: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor)
        if size not in AUDIO_LM_PRESETS:
            raise KeyError(f'unknown size {size!r}; choose one of '
                           f'{sorted(AUDIO_LM_PRESETS)}')
        kwargs = dict(AUDIO_LM_PRESETS[size], **(arch or {}))
        core = DualFFNAudioLMCore(
            audio_out_token_id=audio_out_token_id,
            audio_in_token_id=audio_in_token_id,
            **kwargs)
        if pretrained:
            load_weights(core, pretrained, pretrained_format)
        self.lm: nn.Module = inject_lora(core, **lora) if lora else core
        self.text_loss_weight = text_loss_weight
        self.audio_loss_weight = audio_loss_weight
        # Cross-entropy of a uniform prediction, the start of a fresh model.
        self.expected_loss_ranges = dict(
            loss_text=(0.05, math.log(kwargs['vocab_size']) * 1.5),
            loss_audio=(0.05, math.log(AUDIO_VOCAB) * 1.5))
        # Checked on every batch by the sanity engine: ids index embeddings
        # and cross-entropy targets; -100 is the only ignore label.
        vocab, audio = kwargs['vocab_size'], core.audio_vocab
        self.value_ranges = dict(
            input_ids=(0, vocab),
            label_ids=(0, vocab, IGNORE_INDEX),
            audio_out_ids=(0, audio),
            audio_in_ids=(0, audio),
            label_audio_ids=(0, audio, IGNORE_INDEX))

    @property
    def core(self) -> DualFFNAudioLMCore:
        """The network (LoRA layers, if any, are inside it)."""
        lm = self.lm
        return lm.get_base_model() if hasattr(lm, 'get_base_model') else lm

    def forward(self,
                input_ids: torch.Tensor,
                attention_mask: torch.Tensor,
                label_ids: Optional[torch.Tensor] = None,
                audio_out_ids: Optional[torch.Tensor] = None,
                audio_out_ids_start: Optional[torch.Tensor] = None,
                label_audio_ids: Optional[torch.Tensor] = None,
                audio_in_ids: Optional[torch.Tensor] = None,
                audio_in_ids_start: Optional[torch.Tensor] = None,
                mode: str = 'tensor'
                ) -> Union[Dict[str, torch.Tensor], List[dict]]:
        """``mode='loss'``: the loss dict; ``'tensor'``: the network
        outputs; ``'predict'``: per-sample greedy (teacher-forced) text
        and audio predictions."""
        if mode == 'loss':
            missing = [
                k for k, v in (('label_ids', label_ids),
                               ('audio_out_ids', audio_out_ids),
                               ('label_audio_ids', label_audio_ids))
                if v is None
            ]
            if missing:
                raise ValueError(f'mode="loss" needs {missing}: pass every '
                                 'batch key under its own name')
        outputs = self.lm(
            input_ids=input_ids,
            attention_mask=attention_mask,
            label_ids=label_ids,
            audio_out_ids=audio_out_ids,
            audio_out_ids_start=audio_out_ids_start,
            audio_in_ids=audio_in_ids,
            audio_in_ids_start=audio_in_ids_start)
        if mode == 'tensor':
            return outputs
        if mode == 'loss':
            losses = audio_lm_losses(outputs['logits'],
                                     outputs['expanded_labels'],
                                     outputs['audio_logits'], label_audio_ids)
            losses['loss_text'] = losses['loss_text'] * self.text_loss_weight
            losses['loss_audio'] = (
                losses['loss_audio'] * self.audio_loss_weight)
            return losses
        if mode == 'predict':
            return self._predict(outputs)
        raise ValueError(f'invalid mode {mode!r}: loss, tensor or predict')

    @staticmethod
    def _predict(outputs: dict) -> List[dict]:
        text = outputs['logits'].argmax(-1)
        audio = outputs['audio_logits'].argmax(-1).t()  # (K, N)
        return [
            dict(
                text_ids=text[b][outputs['attention_mask'][b].bool()],
                audio_ids=audio) for b in range(len(text))
        ]

    def export_weights(self, directory: str) -> str:
        """Save the network with LoRA merged into the base weights.

        The result is a plain safetensors directory in our layout: it
        loads with ``pretrained=directory`` (``'native'``) without PEFT.
        The model itself keeps its adapters.
        """
        lm = self.lm
        if hasattr(lm, 'merge_and_unload'):
            lm = copy.deepcopy(lm).merge_and_unload()
        return save_weights(lm, directory)

    @torch.no_grad()
    def generate_audio(self,
                       prompt_ids: torch.Tensor,
                       max_frames: int = 256,
                       audio_in: Sequence[torch.Tensor] = ()) -> torch.Tensor:
        """Greedy audio codes ``(8, T)`` after a prompt ending with
        ``<|AUDIO_OUT|>`` (see :meth:`DualFFNAudioLMCore.generate_audio`).
        """
        return self.core.generate_audio(prompt_ids, max_frames, audio_in)
