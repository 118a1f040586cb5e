"""The audio token stream: code constants, the MusicGen delay pattern, and
the label value that losses ignore (``IGNORE_INDEX``).

Codebook ``k`` is shifted right by ``k`` frames, so the model predicts the
coarse codebook of a frame before the finer ones. Fill values: stream BOS
(1024) before a codebook starts, stream EOS (1025) after it ends. A stream
is ``[BOS column] + delayed codes + [EOS column]``; the model reads
``stream[:, :-1]`` and is trained to predict ``stream[:, 1:]``.

Example (2 codebooks, T = 3; B = BOS, E = EOS)::

    codes        delayed           stream
    a0 a1 a2     a0 a1 a2 E        B a0 a1 a2 E  E
    b0 b1 b2     B  b0 b1 b2       B B  b0 b1 b2 E
"""
import torch

NUM_CODEBOOKS = 8
CODEBOOK_SIZE = 1024
STREAM_BOS = 1024
STREAM_EOS = 1025
AUDIO_VOCAB = CODEBOOK_SIZE + 2  # 1026 classes per codebook
# Label of positions no loss reads (prompt tokens, padding): torch's
# cross-entropy default.
IGNORE_INDEX = -100


def apply_delay_pattern(codes: torch.Tensor,
                        bos: int = STREAM_BOS,
                        eos: int = STREAM_EOS) -> torch.Tensor:
    """Shift codebook ``k`` by ``k`` frames.

    Args:
        codes: ``(K, T)`` integer codes.

    Returns:
        ``(K, T + K - 1)``: ``out[k, t] = codes[k, t - k]`` where
        ``0 <= t - k < T``, ``bos`` before and ``eos`` after.
    """
    if codes.dim() != 2:
        raise ValueError(f'codes must be (K, T), got {tuple(codes.shape)}')
    k, t = codes.shape
    out = codes.new_full((k, t + k - 1), eos)
    for i in range(k):
        out[i, :i] = bos
        out[i, i:i + t] = codes[i]
    return out


def revert_delay_pattern(delayed: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`apply_delay_pattern`: ``(K, L) -> (K, L - K + 1)``.
    """
    k, length = delayed.shape
    t = length - k + 1
    if t < 0:
        raise ValueError(f'a delayed stream of {k} codebooks needs at least '
                         f'{k - 1} frames, got {length}')
    return torch.stack([delayed[i, i:i + t] for i in range(k)])


def build_audio_stream(codes: torch.Tensor) -> torch.Tensor:
    """``(K, T)`` codes -> ``(K, T + K + 1)`` stream with BOS/EOS columns.
    """
    if codes.numel() and (int(codes.min()) < 0
                          or int(codes.max()) >= CODEBOOK_SIZE):
        raise ValueError(f'audio codes must lie in [0, {CODEBOOK_SIZE}), got '
                         f'[{int(codes.min())}, {int(codes.max())}]')
    delayed = apply_delay_pattern(codes)
    k = codes.shape[0]
    bos = delayed.new_full((k, 1), STREAM_BOS)
    eos = delayed.new_full((k, 1), STREAM_EOS)
    return torch.cat([bos, delayed, eos], dim=1)


def stream_to_codes(stream: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`build_audio_stream` (drops BOS/EOS columns)."""
    return revert_delay_pattern(stream[:, 1:-1])
