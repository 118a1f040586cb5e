"""Expansion of audio placeholders on hand-built batches."""
import pytest
import torch

from engine_plugins.models.audio import merge_input_ids_with_audio_features

OUT, IN, PAD = 90, 91, 0
X = -100


def _merge(ids, mask, labels, out_start, n_out, in_start=None, n_in=0):
    return merge_input_ids_with_audio_features(
        torch.tensor(ids), torch.tensor(mask), OUT, IN,
        torch.tensor(labels),
        torch.tensor(out_start) if out_start is not None else None, n_out,
        torch.tensor(in_start) if in_start is not None else None, n_in)


def test_several_segments_per_sample_and_padding():
    # Row 0: text, an audio-in segment (2 frames), two audio-out segments
    # (3 and 1 frames). Row 1: one audio-out segment (4 frames), padded.
    ids = [[5, IN, 6, OUT, 7, OUT, 8], [9, OUT, 10, PAD, PAD, PAD, PAD]]
    mask = [[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0, 0]]
    labels = [[X, X, 16, X, 17, X, 18], [19, X, 20, X, X, X, X]]
    merged = _merge(ids, mask, labels, [0, 3, 4], 8, [0], 2)
    # Row 0: 4 text + 2 + 3 + 1 frames = 10; row 1: 2 text + 4 frames.
    assert merged.kind.shape == (2, 10)
    assert merged.attention_mask.sum(1).tolist() == [10, 6]
    assert merged.expanded_labels.tolist() == [
        [X, X, X, 16, X, X, X, 17, X, 18],
        [19, X, X, X, X, 20, X, X, X, X],
    ]
    assert merged.kind.tolist()[0] == [0, 1, 1, 0, 2, 2, 2, 0, 2, 0]
    assert merged.index.tolist()[0] == [0, 0, 1, 2, 0, 1, 2, 4, 3, 6]
    assert merged.kind.tolist()[1][:6] == [0, 2, 2, 2, 2, 0]
    assert merged.index.tolist()[1][:6] == [0, 4, 5, 6, 7, 2]
    assert merged.audio_out_mask.sum().item() == 8
    assert merged.audio_in_mask.sum().item() == 2
    assert merged.position_ids.tolist()[1][:6] == list(range(6))


def test_no_audio_keeps_text_and_drops_padding():
    merged = _merge([[3, 4, 0]], [[1, 1, 0]], [[3, 4, X]], None, 0)
    assert merged.kind.shape == (1, 2)
    assert merged.expanded_labels.tolist() == [[3, 4]]


def test_placeholder_segment_mismatch_is_named():
    with pytest.raises(ValueError, match='1 <\\|AUDIO_OUT\\|> and 0 '
                       '<\\|AUDIO\\|> placeholders but 2 audio_out_ids '
                       'segments'):
        _merge([[OUT, 1]], [[1, 1]], [[X, 1]], [0, 2], 5)
    with pytest.raises(ValueError, match='audio_out_ids_start must start'):
        _merge([[OUT, 1]], [[1, 1]], [[X, 1]], [1], 5)
