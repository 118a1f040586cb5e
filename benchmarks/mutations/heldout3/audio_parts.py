"""Held-out set 3, DualFFN audio LM: a collate function, a model variant,
hooks and an optimizer constructor a user might add, each with one bug
(``BUG``)."""
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.optim import DefaultOptimWrapperConstructor
from mmengine.registry import FUNCTIONS, OPTIM_WRAPPERS, OPTIMIZERS

from engine_plugins.datasets.audio import audio_lm_collate
from engine_plugins.models.audio import DualFFNAudioLM, audio_lm_losses
from engine_plugins.registry import HOOKS, MODELS, OPTIM_WRAPPER_CONSTRUCTORS
from engine_plugins.structures import STREAM_BOS

IGNORE = -100


def _unwrap(model):
    return model.module if is_model_wrapper(model) else model


@FUNCTIONS.register_module()
def HeldC_masked_audio_collate(batch: List[dict],
                               pad_id: int = 0) -> Dict[str, torch.Tensor]:
    """``audio_lm_collate``, then make sure no padded position is ever a
    text target.

    BUG: the mask is inverted (``attention_mask`` instead of its
    complement): every real text label becomes -100, so the text head has
    nothing to learn from.
    """
    out = audio_lm_collate(batch, pad_id)
    out['label_ids'] = out['label_ids'].masked_fill(
        out['attention_mask'].bool(), IGNORE)
    return out


@MODELS.register_module()
class HeldCPerCodebookAudioLM(DualFFNAudioLM):
    """Trains each codebook with its own CE term (so each is weighted
    alike however many targets it has), named after the logged
    ``ce_audio_cb{k}`` values.

    BUG: the per-codebook terms replace ``loss_audio`` but have no
    ``loss`` in their names: mmengine's ``parse_losses`` leaves them out of
    the total, and the audio head is never trained.
    """

    def forward(self,
                input_ids: torch.Tensor,
                attention_mask: torch.Tensor,
                label_ids: Optional[torch.Tensor] = None,
                audio_out_ids: Optional[torch.Tensor] = None,
                audio_out_ids_start: Optional[torch.Tensor] = None,
                label_audio_ids: Optional[torch.Tensor] = None,
                audio_in_ids: Optional[torch.Tensor] = None,
                audio_in_ids_start: Optional[torch.Tensor] = None,
                mode: str = 'tensor'):
        kwargs = dict(
            input_ids=input_ids,
            attention_mask=attention_mask,
            label_ids=label_ids,
            audio_out_ids=audio_out_ids,
            audio_out_ids_start=audio_out_ids_start,
            label_audio_ids=label_audio_ids,
            audio_in_ids=audio_in_ids,
            audio_in_ids_start=audio_in_ids_start)
        if mode != 'loss':
            return super().forward(**kwargs, mode=mode)
        outputs = super().forward(**kwargs, mode='tensor')
        losses = audio_lm_losses(outputs['logits'],
                                 outputs['expanded_labels'],
                                 outputs['audio_logits'], label_audio_ids)
        target = label_audio_ids.t().masked_fill(
            label_audio_ids.t() == STREAM_BOS, IGNORE)
        result = dict(loss_text=losses['loss_text'] * self.text_loss_weight)
        for k in range(target.shape[1]):
            result[f'ce_audio_cb{k}'] = self.audio_loss_weight * \
                F.cross_entropy(outputs['audio_logits'][:, k].float(),
                                target[:, k], ignore_index=IGNORE)
        return result


@HOOKS.register_module()
class HeldCAudioCurriculumHook(Hook):
    """Ramp the audio loss in over training: ``audio_loss_weight =
    final_weight * epoch / max_epochs``, text first, audio later.

    BUG: the quick start is iteration-based: the whole run is one epoch,
    ``runner.epoch`` stays 0 and the audio loss weight stays 0.
    """

    priority = 'NORMAL'

    def __init__(self, final_weight: float = 1.0) -> None:
        self.final_weight = final_weight

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        model = _unwrap(runner.model)
        model.audio_loss_weight = (
            self.final_weight * runner.epoch / runner.max_epochs)


@HOOKS.register_module()
class HeldCFreezeBaseModelHook(Hook):
    """Make sure that only the adapters train: freeze the PEFT base model
    when training starts (after any checkpoint is loaded).

    BUG: PEFT injects the LoRA layers (and the ``modules_to_save``
    copies) into the base model itself, so ``get_base_model()`` holds the
    adapters too: everything is frozen.
    """

    priority = 'NORMAL'

    def before_train_epoch(self, runner) -> None:
        model = _unwrap(runner.model)
        model.lm.get_base_model().requires_grad_(False)


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class HeldCLoraOnlyOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """Give the optimizer only the LoRA matrices (no AdamW state for the
    frozen base weights).

    BUG: selects parameters by the name ``lora_`` rather than by
    ``requires_grad``: the ``modules_to_save`` copies (embeddings and
    heads), which the config trains fully, get gradients but are never
    updated.
    """

    def __call__(self, model) -> 'OptimWrapper':  # noqa: F821
        model = _unwrap(model)
        optimizer_cfg = self.optimizer_cfg.copy()
        optimizer_cfg['params'] = [
            p for name, p in model.named_parameters() if 'lora_' in name
        ]
        optimizer = OPTIMIZERS.build(optimizer_cfg)
        wrapper_cfg = self.optim_wrapper_cfg.copy()
        wrapper_cfg.setdefault('type', 'OptimWrapper')
        return OPTIM_WRAPPERS.build(
            wrapper_cfg, default_args=dict(optimizer=optimizer))
