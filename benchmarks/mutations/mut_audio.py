"""Bugs in audio LM training code users write: collate functions, a LoRA
hook, a model subclass."""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import FUNCTIONS

from engine_plugins.datasets.audio import audio_lm_collate
from engine_plugins.models.audio import DualFFNAudioLM
from engine_plugins.models.audio.lora import inject_lora
from engine_plugins.registry import HOOKS, MODELS

IGNORE = -100


@FUNCTIONS.register_module()
def mut_audio_peft_filter_collate(batch):
    """A trainer's collate that drops the keys it takes for PEFT's
    ``labels``."""
    return {
        k: v
        for k, v in audio_lm_collate(batch).items()
        if k not in ('label_ids', 'label_audio_ids', 'audio_out_ids')
    }


@FUNCTIONS.register_module()
def mut_audio_mask_text_collate(batch):
    """Masks every text label ("train on audio only" done by accident)."""
    data = audio_lm_collate(batch)
    data['label_ids'][:] = IGNORE
    return data


@FUNCTIONS.register_module()
def mut_audio_mask_everything_collate(batch):
    """A label mask inverted: every text and audio label ignored."""
    data = audio_lm_collate(batch)
    data['label_ids'][:] = IGNORE
    data['label_audio_ids'][:] = IGNORE
    return data


@HOOKS.register_module()
class MutLateLoRAHook(Hook):
    """Wraps the network with PEFT LoRA in ``before_train``, after the
    runner built the optimizer over the full model."""

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        model.lm = inject_lora(
            model.lm, dict(attention=r'layers\.\d+\.self_attn\.(q|v)_proj'))


@MODELS.register_module()
class MutAudioLM(DualFFNAudioLM):
    """``bug='detach_audio'``: the audio loss is logged detached."""

    def __init__(self, bug: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.bug = bug

    def forward(self, *args, mode='tensor', **kwargs):
        out = super().forward(*args, mode=mode, **kwargs)
        if mode == 'loss' and self.bug == 'detach_audio':
            out['loss_audio'] = out['loss_audio'].detach()
        return out
