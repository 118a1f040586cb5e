"""Text tokenizers for the audio LM: built-in byte-level, or a local HF one.

Both expose ``encode(text) -> List[int]`` (no special tokens added),
``token_id(name)`` for the special tokens, ``pad_id`` and ``vocab_size``.
"""
import os.path as osp
from typing import Dict, List, Union

SPECIAL_TOKENS = ('<|pad|>', '<|im_start|>', '<|im_end|>', '<|AUDIO|>',
                  '<|AUDIO_OUT|>', '<|audio_bos|>', '<|audio_eos|>',
                  '<|audio_out_bos|>')


class ByteTokenizer:
    """UTF-8 bytes (ids 0-255) followed by :data:`SPECIAL_TOKENS` (256+).

    Needs no files, so the quick start runs anywhere; 264 ids in all.

    Example:
        >>> tok = ByteTokenizer()
        >>> tok.encode('hi'), tok.token_id('<|AUDIO_OUT|>')
        ([104, 105], 260)
    """

    def __init__(self) -> None:
        self.special: Dict[str, int] = {
            name: 256 + i
            for i, name in enumerate(SPECIAL_TOKENS)
        }
        self.vocab_size = 256 + len(SPECIAL_TOKENS)
        self.pad_id = self.special['<|pad|>']

    def encode(self, text: str) -> List[int]:
        return list(text.encode('utf-8'))

    def decode(self, ids: List[int]) -> str:
        return bytes(i for i in ids if i < 256).decode('utf-8', 'replace')

    def token_id(self, name: str) -> int:
        if name not in self.special:
            raise KeyError(f'unknown special token {name!r}; the byte '
                           f'tokenizer has {list(self.special)}')
        return self.special[name]


class HFTokenizer:
    """A tokenizer directory on disk (``AutoTokenizer``, no download).

    The directory must define the audio special tokens as single tokens
    (Higgs Audio's Llama-3 tokenizer does; ``<|pad|>`` may be missing, then
    the tokenizer's own pad or EOS token pads).

    Args:
        path: Local directory with ``tokenizer.json`` / config files.
    """

    def __init__(self, path: str) -> None:
        from transformers import AutoTokenizer
        if not osp.isdir(path):
            raise FileNotFoundError(f'tokenizer directory not found: {path}')
        self.tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.vocab_size = len(self.tok)
        unk = self.tok.unk_token_id
        self.special = {}
        for name in SPECIAL_TOKENS:
            idx = self.tok.convert_tokens_to_ids(name)
            if idx is not None and idx != unk:
                self.special[name] = idx
        missing = [n for n in SPECIAL_TOKENS[1:] if n not in self.special]
        if missing:
            raise KeyError(f'tokenizer {path} lacks the special tokens '
                           f'{missing}; add them (tokenizer.add_tokens) and '
                           'resize the model embeddings')
        # Padding is masked out, so any id works when none is defined.
        candidates = (self.special.get('<|pad|>'), self.tok.pad_token_id,
                      self.tok.eos_token_id, 0)
        self.pad_id = next(c for c in candidates if c is not None)

    def encode(self, text: str) -> List[int]:
        return self.tok.encode(text, add_special_tokens=False)

    def decode(self, ids: List[int]) -> str:
        return self.tok.decode(ids)

    def token_id(self, name: str) -> int:
        return self.special[name]


def build_tokenizer(spec: str = 'byte') -> Union[ByteTokenizer, HFTokenizer]:
    """``'byte'`` for :class:`ByteTokenizer`, else a local directory."""
    return ByteTokenizer() if spec == 'byte' else HFTokenizer(spec)
