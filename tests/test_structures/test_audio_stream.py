import pytest
import torch

from engine_plugins.structures import (STREAM_BOS, STREAM_EOS,
                                       apply_delay_pattern, build_audio_stream,
                                       revert_delay_pattern, stream_to_codes)

B, E = STREAM_BOS, STREAM_EOS


def test_delay_pattern_by_hand():
    codes = torch.tensor([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    assert apply_delay_pattern(codes).tolist() == [
        [1, 2, 3, E, E],
        [B, 4, 5, 6, E],
        [B, B, 7, 8, 9],
    ]
    assert build_audio_stream(codes).tolist() == [
        [B, 1, 2, 3, E, E, E],
        [B, B, 4, 5, 6, E, E],
        [B, B, B, 7, 8, 9, E],
    ]


def test_inverse_round_trip_8_codebooks():
    codes = torch.randint(0, 1024, (8, 11))
    delayed = apply_delay_pattern(codes)
    assert delayed.shape == (8, 18)
    assert torch.equal(revert_delay_pattern(delayed), codes)
    stream = build_audio_stream(codes)
    assert stream.shape == (8, 20)
    assert torch.equal(stream_to_codes(stream), codes)
    # Codebook k starts k frames late.
    for k in range(8):
        assert delayed[k, k] == codes[k, 0]
        assert (delayed[k, :k] == B).all()


def test_out_of_range_codes_are_rejected():
    with pytest.raises(ValueError, match=r'\[0, 1024\)'):
        build_audio_stream(torch.full((8, 2), 1024))
    with pytest.raises(ValueError, match='must be \\(K, T\\)'):
        apply_delay_pattern(torch.zeros(8, dtype=torch.long))
