"""DualFFN audio-token LM (Higgs-Audio-style) with PEFT LoRA."""
from engine_plugins.structures import (AUDIO_VOCAB, CODEBOOK_SIZE,
                                       NUM_CODEBOOKS, STREAM_BOS, STREAM_EOS,
                                       apply_delay_pattern, build_audio_stream,
                                       revert_delay_pattern, stream_to_codes)
from .audio_lm import DualFFNAudioLMCore
from .audio_lm_model import DualFFNAudioLM
from .dual_ffn import DualFFNDecoderLayer
from .lora import ATTENTION, AUDIO_FFN, TEXT_FFN, inject_lora
from .losses import audio_lm_losses
from .merge import MergedSequence, merge_input_ids_with_audio_features
from .presets import AUDIO_LM_PRESETS
from .weights import load_weights, map_higgs_state_dict, save_weights

__all__ = [
    'AUDIO_LM_PRESETS', 'DualFFNAudioLMCore', 'DualFFNAudioLM',
    'AUDIO_VOCAB', 'CODEBOOK_SIZE', 'NUM_CODEBOOKS', 'STREAM_BOS',
    'STREAM_EOS', 'apply_delay_pattern', 'build_audio_stream',
    'revert_delay_pattern', 'stream_to_codes', 'DualFFNDecoderLayer',
    'ATTENTION', 'AUDIO_FFN', 'TEXT_FFN', 'inject_lora', 'audio_lm_losses',
    'MergedSequence', 'merge_input_ids_with_audio_features', 'load_weights',
    'map_higgs_state_dict', 'save_weights'
]
