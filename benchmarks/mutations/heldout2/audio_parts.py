"""Parts of held-out set B on the DualFFN audio LM: collate functions and
model subclasses, each with one bug."""
from typing import Dict, List, Optional

import torch
from mmengine.registry import FUNCTIONS

from engine_plugins.datasets.audio.collate import audio_lm_collate
from engine_plugins.models.audio import DualFFNAudioLM
from engine_plugins.registry import MODELS
from engine_plugins.structures import AUDIO_VOCAB
from engine_plugins.structures import IGNORE_INDEX as IGNORE


@FUNCTIONS.register_module()
def HeldB_mask_padding_collate(batch: List[dict]) -> Dict[str, torch.Tensor]:
    """``audio_lm_collate``, then make sure padded positions are ignored by
    the text loss.

    BUG: the comparison is inverted (``== 1`` for ``== 0``): every real
    position's text label becomes -100, so no text token is ever
    supervised (the audio labels are untouched).
    """
    out = audio_lm_collate(batch)
    out['label_ids'][out['attention_mask'] == 1] = IGNORE
    return out


@FUNCTIONS.register_module()
def HeldB_flat_codebook_collate(batch: List[dict]) -> Dict[str, torch.Tensor]:
    """``audio_lm_collate`` with audio labels in the flattened codebook
    vocabulary, "as the embedding table indexes them" (codebook k at
    offset ``k * 1026``).

    BUG: the audio head scores each codebook over its own 1026 classes, so
    labels of codebooks 1..7 are out of range for the cross-entropy.
    """
    out = audio_lm_collate(batch)
    labels = out['label_audio_ids']
    offsets = torch.arange(labels.shape[0])[:, None] * AUDIO_VOCAB
    out['label_audio_ids'] = labels + offsets
    return out


@MODELS.register_module()
class HeldBFrozenBaseAudioLM(DualFFNAudioLM):
    """After LoRA injection, freeze the base model "to be sure".

    BUG: ``base_model.model`` is the whole network with the adapters and
    the ``modules_to_save`` copies inside it, so ``requires_grad_(False)``
    freezes every parameter, the adapters included.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if hasattr(self.lm, 'base_model'):
            self.lm.base_model.model.requires_grad_(False)


@MODELS.register_module()
class HeldBWeightedAudioLM(DualFFNAudioLM):
    """Loss weights given as one dict, ``loss_weights=dict(text=...,
    audio=...)``.

    BUG: the audio weight is looked up as ``'audio_loss'`` with a default
    of 0.0, so the audio loss is multiplied by 0 for the whole run.
    """

    def __init__(self,
                 *args,
                 loss_weights: Optional[dict] = None,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        weights = loss_weights or dict(text=1.0, audio=1.0)
        self.text_loss_weight = weights.get('text', 1.0)
        self.audio_loss_weight = weights.get('audio_loss', 0.0)


@MODELS.register_module()
class HeldBHalfAudioLM(DualFFNAudioLM):
    """Keeps the whole network in float16 to halve its memory (the losses
    still run in fp32, on upcast logits).

    BUG: no fp32 master weights: AdamW then keeps its moments in fp16,
    where small gradients square to 0 and ``eps=1e-8`` rounds to 0, so
    ``exp_avg / (sqrt(exp_avg_sq) + eps)`` is x/0 or 0/0 for them.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lm.half()
