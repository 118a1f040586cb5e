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
from typing import Optional, Tuple

import torch

from engine_plugins.structures import IGNORE_INDEX

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


def _segments(start: Optional[torch.Tensor], total: int, name: str,
              device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
    """First frame and length of each segment, checked on the host (one
    small tensor per batch)."""
    if start is None or start.numel() == 0:
        empty = torch.zeros(0, dtype=torch.long, device=device)
        return empty, empty
    starts = [int(s) for s in start.flatten()]
    ends = starts[1:] + [total]
    if any(e <= s for s, e in zip(starts, ends)) or starts[0] != 0:
        raise ValueError(f'{name} must start at 0 and increase strictly '
                         f'below {total} frames, got {starts}')
    return (torch.tensor(starts, device=device),
            torch.tensor([e - s for s, e in zip(starts, ends)],
                         device=device))


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

    Vectorised: every input position gets a length (1 for text, the
    segment's frame count for a placeholder, 0 for padding), and the
    expanded positions are ``repeat_interleave`` of the inputs.

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
    device = input_ids.device
    batch, text_len = input_ids.shape
    real = attention_mask.bool()
    kind = torch.full_like(input_ids, TEXT)
    length = real.long()
    first = torch.arange(text_len, device=device).expand_as(input_ids).clone()
    found = {}
    for token, code, starts, total, name in (
            (audio_out_token_id, AUDIO_OUT, audio_out_ids_start,
             num_audio_out_frames, 'audio_out_ids_start'),
            (audio_in_token_id, AUDIO_IN, audio_in_ids_start,
             num_audio_in_frames, 'audio_in_ids_start')):
        seg_start, seg_len = _segments(starts, total, name, device)
        where = real & (input_ids == token)
        found[code] = (int(where.sum()), len(seg_start))
        if found[code][0] != found[code][1]:
            continue  # reported below with both counts
        # Masked assignment is row-major: the placeholders' order.
        kind[where] = code
        length[where] = seg_len
        first[where] = seg_start
    (ph_out, n_out), (ph_in, n_in) = found[AUDIO_OUT], found[AUDIO_IN]
    if ph_out != n_out or ph_in != n_in:
        raise ValueError(
            f'the batch has {ph_out} <|AUDIO_OUT|> and {ph_in} <|AUDIO|> '
            f'placeholders but {n_out} audio_out_ids segments and {n_in} '
            'audio_in_ids segments')

    flat_len = length.flatten()
    src = torch.repeat_interleave(
        torch.arange(flat_len.numel(), device=device), flat_len)
    step = torch.arange(len(src), device=device)
    within = step - (flat_len.cumsum(0) - flat_len)[src]
    row = src // text_len
    row_len = length.sum(1)
    col = step - (row_len.cumsum(0) - row_len)[row]
    out_len = int(row_len.max()) if batch else 0

    def lay(values: torch.Tensor, fill: int) -> torch.Tensor:
        out = torch.full((batch, out_len), fill, dtype=torch.long,
                         device=device)
        out[row, col] = values
        return out

    src_kind = kind.flatten()[src]
    expanded_labels = None
    if label_ids is not None:
        expanded_labels = lay(
            torch.where(src_kind == TEXT,
                        label_ids.flatten()[src].long(), IGNORE_INDEX),
            IGNORE_INDEX)
    return MergedSequence(
        kind=lay(src_kind, TEXT),
        index=lay(first.flatten()[src] + within, 0),
        attention_mask=lay(torch.ones_like(src), 0),
        expanded_labels=expanded_labels,
        position_ids=lay(col, 0))
