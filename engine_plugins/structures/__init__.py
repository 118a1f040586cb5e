"""Data contracts shared by datasets, models and metrics, so that none of
them imports another: array geometry and steering vectors, the audio token
stream layout, and box frames."""
from . import detection_targets  # noqa: F401  (registers the contracts)
from .array_geometry import ArrayGeometry, ula_response
from .audio_stream import (AUDIO_VOCAB, CODEBOOK_SIZE, IGNORE_INDEX,
                           NUM_CODEBOOKS, STREAM_BOS, STREAM_EOS,
                           apply_delay_pattern, build_audio_stream,
                           revert_delay_pattern, stream_to_codes)
from .packed_targets import PackedTargets

__all__ = [
    'ArrayGeometry', 'ula_response', 'AUDIO_VOCAB', 'CODEBOOK_SIZE',
    'IGNORE_INDEX', 'NUM_CODEBOOKS', 'STREAM_BOS', 'STREAM_EOS',
    'apply_delay_pattern', 'build_audio_stream', 'revert_delay_pattern',
    'stream_to_codes', 'PackedTargets'
]
