"""Held-out broken setups for the DualFFN audio LM."""
import inspect
from typing import Dict, List

import torch
from mmengine.hooks import Hook
from mmengine.model import BaseDataPreprocessor, is_model_wrapper
from mmengine.registry import FUNCTIONS

from engine_plugins.datasets.audio import AudioChatDataset, audio_lm_collate
from engine_plugins.datasets.audio.chat_manifest_dataset import load_codes
from engine_plugins.models.audio.audio_lm import DualFFNAudioLMCore
from engine_plugins.models.audio.audio_lm_model import DualFFNAudioLM
from engine_plugins.registry import DATASETS, HOOKS, MODELS
from engine_plugins.structures import IGNORE_INDEX as IGNORE
from engine_plugins.structures import STREAM_EOS


def _model(runner):
    return runner.model.module if is_model_wrapper(
        runner.model) else runner.model


@DATASETS.register_module()
class HeldShareGPTChatDataset(AudioChatDataset):
    """``__getitem__`` ported from a ShareGPT-format loader.

    Bug: the turn to learn is recognised by ShareGPT's role name
    ``'gpt'``; our manifests say ``'assistant'``. No turn is learned: every
    text label is -100, and the assistant's audio is fed as audio *input*
    (``<|AUDIO|>``), so there are no audio-out frames and no audio labels
    at all."""

    def __getitem__(self, idx: int) -> Dict[str, object]:
        tok = self.tokenizer
        ids: List[int] = []
        labels: List[int] = []
        audio_in, audio_out = [], []
        for turn in self.samples[idx % len(self.samples)]:
            learn = turn['role'] == 'gpt'
            header = [tok.token_id('<|im_start|>')] + tok.encode(
                turn['role'] + '\n')
            body = tok.encode(turn['content'])
            if turn['audio'] is not None:
                codes = load_codes(turn['audio'], turn['where'])
                if learn:
                    body += [tok.token_id('<|audio_out_bos|>'),
                             tok.token_id('<|AUDIO_OUT|>')]
                    audio_out.append(codes)
                else:
                    body += [tok.token_id('<|audio_bos|>'),
                             tok.token_id('<|AUDIO|>')]
                    audio_in.append(codes)
                body.append(tok.token_id('<|audio_eos|>'))
            body.append(tok.token_id('<|im_end|>'))
            tail = tok.encode('\n')
            ids += header + body + tail
            placeholder = tok.token_id('<|AUDIO_OUT|>')
            labels += [IGNORE] * len(header) + [
                t if learn and t != placeholder else IGNORE for t in body
            ] + [IGNORE] * len(tail)
        return dict(
            input_ids=torch.tensor(ids),
            label_ids=torch.tensor(labels),
            audio_in=audio_in,
            audio_out=audio_out)


@MODELS.register_module()
class HeldSignatureFilterPreprocessor(BaseDataPreprocessor):
    """Moves the batch to the device and keeps only the keys the network
    accepts, "so that no unexpected kwarg reaches it" (a common trainer
    pattern).

    Bug: the filter uses the signature of the inner network
    (``DualFFNAudioLMCore.forward``), which does not take
    ``label_audio_ids`` (only the wrapper's loss uses it): the audio
    labels are dropped before the model."""

    def forward(self, data, training=False):
        data = super().forward(data, training)
        accepted = inspect.signature(DualFFNAudioLMCore.forward).parameters
        return {k: v for k, v in data.items() if k in accepted}


@HOOKS.register_module()
class HeldLRRangeTestHook(Hook):
    """An lr range test (lr x ``factor`` after every iteration), meant for
    a short probe run.

    Bug: left in the training config, so the lr grows geometrically and
    the run diverges within a few iterations."""

    priority = 'LOW'

    def __init__(self, factor: float = 3.0) -> None:
        self.factor = factor

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        for group in runner.optim_wrapper.optimizer.param_groups:
            group['lr'] *= self.factor


@HOOKS.register_module()
class HeldAudioLossRampHook(Hook):
    """Curriculum: text first, the audio loss weight ramped in over
    ``ramp_epochs`` epochs.

    Bug: the ramp reads ``runner.epoch``, but the run is iteration-based
    over a repeated manifest (one epoch covers the whole run), so the
    epoch stays 0 and the audio loss weight stays exactly 0."""

    priority = 'NORMAL'

    def __init__(self, ramp_epochs: int = 2) -> None:
        self.ramp_epochs = ramp_epochs

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        _model(runner).audio_loss_weight = min(
            1.0, runner.epoch / self.ramp_epochs)


@FUNCTIONS.register_module()
def held_audio_collate_ignore_eos(batch, pad_id: int = 0):
    """``audio_lm_collate``, then the stream-EOS fill of the delay pattern
    is excluded from the audio targets "like the BOS fill".

    Bug: the ignore value is written as -1 (another code base's
    convention) instead of -100; -1 is not a class of the audio vocab."""
    out = audio_lm_collate(batch, pad_id)
    labels = out['label_audio_ids']
    out['label_audio_ids'] = labels.masked_fill(labels == STREAM_EOS, -1)
    return out


@MODELS.register_module()
class HeldHalfAudioLM(DualFFNAudioLM):
    """Casts the network to float16 after building it, "to halve the
    memory" of the fine-tune.

    Bug: pure fp16 parameters with AdamW and no fp32 master weights: the
    gradients and the optimizer state are fp16, and the first update
    already overflows (Adam's second moment underflows to 0, eps 1e-8 is 0
    in fp16)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lm.half()
