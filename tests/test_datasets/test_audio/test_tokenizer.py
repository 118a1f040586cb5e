import json

import pytest
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import Whitespace
from transformers import PreTrainedTokenizerFast

from engine_plugins.datasets.audio import (SPECIAL_TOKENS, AudioChatDataset,
                                           ByteTokenizer, HFTokenizer)

WORDS = ['[UNK]', 'say', 'abc', 'user', 'assistant']


def _save_tokenizer(path, specials):
    tok = Tokenizer(WordLevel({w: i for i, w in enumerate(WORDS)}, '[UNK]'))
    tok.pre_tokenizer = Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token='[UNK]')
    fast.add_special_tokens({'additional_special_tokens': list(specials)})
    fast.save_pretrained(str(path))
    return str(path)


def test_byte_tokenizer_ids():
    tok = ByteTokenizer()
    assert tok.encode('hé') == [104, 0xC3, 0xA9]
    assert tok.vocab_size == 264 and tok.pad_id == 256
    assert tok.token_id('<|AUDIO_OUT|>') == 260
    assert tok.token_id('<|AUDIO|>') == 259
    with pytest.raises(KeyError, match='<|nope|>'):
        tok.token_id('<|nope|>')


def test_local_hf_tokenizer_directory(tmp_path):
    path = _save_tokenizer(tmp_path / 'tok', SPECIAL_TOKENS[1:])
    tok = HFTokenizer(path)
    # Specials are appended after the 5 words, in the order given.
    assert tok.token_id('<|im_start|>') == 5
    assert tok.token_id('<|AUDIO_OUT|>') == 8
    assert tok.encode('say abc') == [1, 2]
    manifest = tmp_path / 'm.jsonl'
    manifest.write_text(json.dumps(dict(messages=[
        dict(role='user', content='say abc'),
        dict(role='assistant', content='abc')
    ])))
    sample = AudioChatDataset(str(manifest), tokenizer=path)[0]
    # <|im_start|> user \n say abc <|im_end|> \n <|im_start|> assistant ...
    assert sample['input_ids'].tolist()[:5] == [5, 3, 1, 2, 6]


def test_missing_special_tokens_are_named(tmp_path):
    path = _save_tokenizer(tmp_path / 'tok', ['<|im_start|>', '<|im_end|>'])
    with pytest.raises(KeyError, match="lacks the special tokens "
                       r"\['<\|AUDIO\|>', '<\|AUDIO_OUT\|>'"):
        HFTokenizer(path)
    with pytest.raises(FileNotFoundError, match='tokenizer directory'):
        HFTokenizer(str(tmp_path / 'none'))
