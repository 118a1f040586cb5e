"""Expand audio placeholders in a text batch into audio-frame positions.

Each ``<|AUDIO_OUT|>`` (``<|AUDIO|>``) token in ``input_ids`` stands for one
segment of ``audio_out_ids`` (``audio_in_ids``): the segments of the whole
batch are concatenated along the frame axis, in row-major order of their
placeholders, and ``*_start`` gives each segment's first column. Expansion
replaces the placeholder by one position per frame; text padding
(``attention_mask == 0``) is dropped and re-added at the end of each row.
This is index bookkeeping only: the model gathers embeddings with it.

Example: row ``[a, <|AUDIO_OUT|>, b, pad]`` with a 3-frame segment becomes
``[a, f0, f1, f2, b]``; ``expanded_labels`` is ``[la, -100, -100, -100,
lb]`` and ``audio_out_mask`` marks ``f0..f2``.
"""
from dataclasses import dataclass
from typing import List, Optional, Tuple

import torch

IGNORE_INDEX = -100
TEXT, AUDIO_IN, AUDIO_OUT = 0, 1, 2


@dataclass
class MergedSequence:
    """Where each position of the expanded batch comes from.

    Attributes:
        kind: ``(B, L)`` 0 text, 1 audio-in frame, 2 audio-out frame
            (padding: 0, masked out by ``attention_mask``).
        index: ``(B, L)`` text column in the row, or the frame column in
            ``audio_in_ids`` / ``audio_out_ids``.
        attention_mask: ``(B, L)`` 1 on real positions.
        expanded_labels: ``(B, L)`` text labels, -100 on audio and padding.
        position_ids: ``(B, L)`` 0..n-1 over the real positions.
    """
    kind: torch.Tensor
    index: torch.Tensor
    attention_mask: torch.Tensor
    expanded_labels: Optional[torch.Tensor]
    position_ids: torch.Tensor

    @property
    def audio_out_mask(self) -> torch.Tensor:
        return (self.kind == AUDIO_OUT) & self.attention_mask.bool()

    @property
    def audio_in_mask(self) -> torch.Tensor:
        return (self.kind == AUDIO_IN) & self.attention_mask.bool()


def _segments(start: Optional[torch.Tensor], total: int,
              name: str) -> List[Tuple[int, int]]:
    if start is None or start.numel() == 0:
        return []
    starts = [int(s) for s in start.flatten()]
    ends = starts[1:] + [total]
    segs = list(zip(starts, ends))
    if any(e <= s for s, e in segs) or starts[0] != 0:
        raise ValueError(f'{name} must start at 0 and increase strictly '
                         f'below {total} frames, got {starts}')
    return segs


def merge_input_ids_with_audio_features(
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        audio_out_token_id: int,
        audio_in_token_id: int,
        label_ids: Optional[torch.Tensor] = None,
        audio_out_ids_start: Optional[torch.Tensor] = None,
        num_audio_out_frames: int = 0,
        audio_in_ids_start: Optional[torch.Tensor] = None,
        num_audio_in_frames: int = 0) -> MergedSequence:
    """Lay text tokens and audio frames out on the expanded sequence.

    Args:
        input_ids: ``(B, L_text)`` token ids with placeholders.
        attention_mask: ``(B, L_text)`` 1 on real tokens.
        audio_out_token_id: id of ``<|AUDIO_OUT|>``.
        audio_in_token_id: id of ``<|AUDIO|>``.
        label_ids: ``(B, L_text)`` text labels (-100 = ignored), or None.
        audio_out_ids_start: ``(S_out,)`` first frame of each segment.
        num_audio_out_frames: columns of ``audio_out_ids``.
        audio_in_ids_start: ``(S_in,)``, as above for audio-in.
        num_audio_in_frames: columns of ``audio_in_ids``.

    Returns:
        The :class:`MergedSequence`.

    Raises:
        ValueError: placeholder and segment counts differ.
    """
    out_segs = iter(_segments(audio_out_ids_start, num_audio_out_frames,
                              'audio_out_ids_start'))
    in_segs = iter(_segments(audio_in_ids_start, num_audio_in_frames,
                             'audio_in_ids_start'))
    ids = input_ids.tolist()
    mask = attention_mask.tolist()
    labels = label_ids.tolist() if label_ids is not None else None
    rows = []
    counts = {AUDIO_OUT: 0, AUDIO_IN: 0}
    for b, row in enumerate(ids):
        kinds, idx, labs = [], [], []
        for j, tok in enumerate(row):
            if not mask[b][j]:
                continue
            kind = {audio_out_token_id: AUDIO_OUT,
                    audio_in_token_id: AUDIO_IN}.get(tok, TEXT)
            if kind == TEXT:
                kinds.append(TEXT)
                idx.append(j)
                labs.append(labels[b][j] if labels is not None else 0)
                continue
            counts[kind] += 1
            seg = next(out_segs if kind == AUDIO_OUT else in_segs, None)
            if seg is None:
                continue  # reported below with the full counts
            n = seg[1] - seg[0]
            kinds += [kind] * n
            idx += range(seg[0], seg[1])
            labs += [IGNORE_INDEX] * n
        rows.append((kinds, idx, labs))
    n_out = len(_segments(audio_out_ids_start, num_audio_out_frames, ''))
    n_in = len(_segments(audio_in_ids_start, num_audio_in_frames, ''))
    if counts[AUDIO_OUT] != n_out or counts[AUDIO_IN] != n_in:
        raise ValueError(
            f'the batch has {counts[AUDIO_OUT]} <|AUDIO_OUT|> and '
            f'{counts[AUDIO_IN]} <|AUDIO|> placeholders but {n_out} '
            f'audio_out_ids segments and {n_in} audio_in_ids segments')
    length = max(len(r[0]) for r in rows)
    device = input_ids.device

    def pad(values, fill):
        return torch.tensor([v + [fill] * (length - len(v)) for v in values],
                            dtype=torch.long, device=device)

    real = [[1] * len(r[0]) for r in rows]
    return MergedSequence(
        kind=pad([r[0] for r in rows], TEXT),
        index=pad([r[1] for r in rows], 0),
        attention_mask=pad(real, 0),
        expanded_labels=(pad([r[2] for r in rows], IGNORE_INDEX)
                         if labels is not None else None),
        position_ids=pad([list(range(len(r[0]))) for r in rows], 0))
