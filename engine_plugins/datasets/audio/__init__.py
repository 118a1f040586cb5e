"""Audio chat manifests, tokenizers, collate and demo data."""
from .chat_manifest_dataset import AudioChatDataset, load_codes
from .collate import audio_lm_collate
from .demo_data import make_audio_demo_data, word_codes
from .rvq_codec import RVQCodec, log_mel
from .tokenizer import SPECIAL_TOKENS, ByteTokenizer, HFTokenizer

__all__ = [
    'AudioChatDataset', 'load_codes', 'audio_lm_collate',
    'make_audio_demo_data', 'word_codes', 'SPECIAL_TOKENS', 'ByteTokenizer',
    'HFTokenizer', 'RVQCodec', 'log_mel'
]
