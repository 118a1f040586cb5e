"""Shared builders for the audio LM tests (byte-tokenizer token ids)."""
import torch

from engine_plugins.models.audio import (AUDIO_LM_PRESETS, DualFFNAudioLMCore,
                                         build_audio_stream)

AUDIO_OUT, AUDIO_IN = 260, 259
X = -100


def tiny_core(seed: int = 0, **overrides) -> DualFFNAudioLMCore:
    torch.manual_seed(seed)
    kwargs = dict(AUDIO_LM_PRESETS['tiny'], **overrides)
    return DualFFNAudioLMCore(
        audio_out_token_id=AUDIO_OUT, audio_in_token_id=AUDIO_IN, **kwargs)


def hand_batch(seed: int = 0) -> dict:
    """Two rows: row 0 has audio-in (3 frames) and two audio-out segments
    (4 and 2 frames of codes), row 1 one audio-out segment (3 frames) and
    padding."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.tensor([[10, AUDIO_IN, 11, 12, AUDIO_OUT, 13, AUDIO_OUT, 14],
                        [20, 21, AUDIO_OUT, 22, 0, 0, 0, 0]])
    mask = (torch.arange(8) < torch.tensor([[8], [4]])).long()
    labels = torch.tensor([[X, X, X, 12, X, 13, X, 14],
                           [X, 21, X, 22, X, X, X, X]])
    streams = [
        build_audio_stream(torch.randint(0, 1024, (8, t), generator=gen))
        for t in (4, 2, 3)
    ]
    lengths = torch.tensor([s.shape[1] - 1 for s in streams])
    audio_in = build_audio_stream(
        torch.randint(0, 1024, (8, 3), generator=gen))
    return dict(
        input_ids=ids,
        attention_mask=mask,
        label_ids=labels,
        audio_out_ids=torch.cat([s[:, :-1] for s in streams], 1),
        audio_out_ids_start=torch.cumsum(lengths, 0) - lengths,
        label_audio_ids=torch.cat([s[:, 1:] for s in streams], 1),
        audio_in_ids=audio_in,
        audio_in_ids_start=torch.tensor([0]))


def core_inputs(batch: dict) -> dict:
    return {k: v for k, v in batch.items() if k != 'label_audio_ids'}
