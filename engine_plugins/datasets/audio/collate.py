"""Batch the audio chat samples: padding, delay pattern, audio labels."""
from typing import Dict, List, Tuple

import torch
from mmengine.registry import FUNCTIONS

from engine_plugins.structures import IGNORE_INDEX, build_audio_stream


def _concat(
        streams: List[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([s.shape[1] for s in streams])
    starts = torch.cumsum(lengths, 0) - lengths
    return torch.cat(streams, dim=1), starts


@FUNCTIONS.register_module()
def audio_lm_collate(batch: List[dict],
                     pad_id: int = 0) -> Dict[str, torch.Tensor]:
    """Collate :class:`AudioChatDataset` samples.

    Text is right-padded (``pad_id``; padded positions have
    ``attention_mask`` 0 and label -100). Each audio segment becomes a
    delayed stream ``[BOS, delayed codes, EOS]`` of ``T + 9`` columns
    (:func:`build_audio_stream`); audio-out segments are split into model
    input ``stream[:, :-1]`` and next-frame labels ``stream[:, 1:]``.
    Segments of the batch are concatenated in row-major order.

    Returns:
        ``input_ids``, ``attention_mask``, ``label_ids`` ``(B, L)``;
        ``audio_out_ids``, ``label_audio_ids`` ``(8, N_out)`` and
        ``audio_out_ids_start`` ``(S_out,)``; with audio input also
        ``audio_in_ids`` ``(8, N_in)`` and ``audio_in_ids_start``.

    Example:
        >>> train_dataloader = dict(collate_fn=dict(type='audio_lm_collate'))
    """
    length = max(len(s['input_ids']) for s in batch)
    input_ids = torch.full((len(batch), length), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), length), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(batch), length), dtype=torch.long)
    for b, sample in enumerate(batch):
        n = len(sample['input_ids'])
        input_ids[b, :n] = sample['input_ids']
        labels[b, :n] = sample['label_ids']
        mask[b, :n] = 1
    out = dict(input_ids=input_ids, attention_mask=mask, label_ids=labels)
    streams = [build_audio_stream(c) for s in batch for c in s['audio_out']]
    if streams:
        out['audio_out_ids'], out['audio_out_ids_start'] = _concat(
            [s[:, :-1] for s in streams])
        out['label_audio_ids'] = torch.cat([s[:, 1:] for s in streams], 1)
    else:
        out['audio_out_ids'] = torch.zeros((8, 0), dtype=torch.long)
        out['label_audio_ids'] = torch.zeros((8, 0), dtype=torch.long)
        out['audio_out_ids_start'] = torch.zeros(0, dtype=torch.long)
    streams_in = [build_audio_stream(c) for s in batch for c in s['audio_in']]
    if streams_in:
        out['audio_in_ids'], out['audio_in_ids_start'] = _concat(streams_in)
    return out
