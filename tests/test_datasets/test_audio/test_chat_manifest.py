import json

import numpy as np
import pytest
import torch

from engine_plugins.datasets.audio import (AudioChatDataset, ByteTokenizer,
                                           audio_lm_collate,
                                           make_audio_demo_data, word_codes)
from engine_plugins.models.audio import build_audio_stream

TOK = ByteTokenizer()
S = TOK.special


def _write(tmp_path, lines, codes=None):
    (tmp_path / 'c').mkdir(exist_ok=True)
    for name, array in (codes or {}).items():
        np.save(tmp_path / 'c' / name, array)
    path = tmp_path / 'm.jsonl'
    path.write_text('\n'.join(
        line if isinstance(line, str) else json.dumps(line)
        for line in lines) + '\n')
    return str(path)


def test_tokens_and_labels_only_on_assistant_turns(tmp_path):
    manifest = _write(tmp_path, [
        dict(messages=[
            dict(role='user', content='hi', audio='c/in.npy'),
            dict(role='assistant', content='ok', audio='c/out.npy')
        ])
    ], dict(**{'in.npy': np.ones((8, 2), np.int64),
               'out.npy': np.full((8, 3), 5, np.int16)}))
    sample = AudioChatDataset(manifest)[0]
    nl = ord('\n')
    user = ([S['<|im_start|>']] + list(b'user\n') + list(b'hi') +
            [S['<|audio_bos|>'], S['<|AUDIO|>'], S['<|audio_eos|>'],
             S['<|im_end|>'], nl])
    header = [S['<|im_start|>']] + list(b'assistant\n')
    body = list(b'ok') + [S['<|audio_out_bos|>'], S['<|AUDIO_OUT|>'],
                          S['<|audio_eos|>'], S['<|im_end|>']]
    assert sample['input_ids'].tolist() == user + header + body + [nl]
    learned = [t if t != S['<|AUDIO_OUT|>'] else -100 for t in body]
    assert sample['label_ids'].tolist() == (
        [-100] * (len(user) + len(header)) + learned + [-100])
    assert [c.shape for c in sample['audio_in']] == [(8, 2)]
    assert torch.equal(sample['audio_out'][0], torch.full((8, 3), 5))


def test_collate_pads_and_builds_delayed_streams(tmp_path):
    manifest = make_audio_demo_data(str(tmp_path), num_samples=3)
    dataset = AudioChatDataset(manifest)
    samples = [dataset[i] for i in range(3)]
    batch = audio_lm_collate(samples)
    lengths = [len(s['input_ids']) for s in samples]
    assert batch['input_ids'].shape == (3, max(lengths))
    assert batch['attention_mask'].sum(1).tolist() == lengths
    assert (batch['label_ids'][batch['attention_mask'] == 0] == -100).all()
    frames = [s['audio_out'][0].shape[1] for s in samples]
    # Each stream has T + 9 columns; model input and labels T + 8 each.
    assert batch['audio_out_ids'].shape == (8, sum(t + 8 for t in frames))
    assert batch['audio_out_ids_start'].tolist() == [
        0, frames[0] + 8, frames[0] + frames[1] + 16
    ]
    stream = build_audio_stream(samples[1]['audio_out'][0])
    start = frames[0] + 8
    assert torch.equal(batch['audio_out_ids'][:, start:start + frames[1] + 8],
                       stream[:, :-1])
    assert torch.equal(
        batch['label_audio_ids'][:, start:start + frames[1] + 8],
        stream[:, 1:])
    # Sample 1 (odd) carries the audio-in reference prompt.
    assert batch['audio_in_ids'].shape == (8, 4 + 9)


def test_demo_codes_follow_the_text(tmp_path):
    make_audio_demo_data(str(tmp_path / 'a'), num_samples=4, seed=3)
    make_audio_demo_data(str(tmp_path / 'b'), num_samples=4, seed=3)
    first = (tmp_path / 'a' / 'train.jsonl').read_text()
    assert first == (tmp_path / 'b' / 'train.jsonl').read_text()
    record = json.loads(first.splitlines()[0])
    word = record['messages'][-1]['content']
    codes = np.load(tmp_path / 'a' / 'codes' / '0000.npy')
    assert np.array_equal(codes, word_codes(word))
    # Hand value: 'a' (97), codebook 1, second frame of the character.
    assert word_codes('a')[1, 1] == (37 * 97 + 101 + 17) % 1024


@pytest.mark.parametrize('line, codes, message', [
    ('{not json', None, r'm.jsonl:2: invalid JSON'),
    (dict(messages=[dict(role='bot', content='x')]), None,
     r"m.jsonl:2, messages\[0\]: role 'bot'"),
    (dict(messages=[dict(role='user', content='x')]), None,
     r'm.jsonl:2: no assistant turn'),
    (dict(messages=[dict(role='assistant', content='x', audio='c/no.npy')]),
     None, r'm.jsonl:2, messages\[0\]: audio code file not found: .*no.npy'),
    (dict(messages=[dict(role='assistant', text='x')]), None,
     r"unknown keys \['text'\]"),
])
def test_bad_manifest_lines_are_named(tmp_path, line, codes, message):
    good = dict(messages=[dict(role='assistant', content='fine')])
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        AudioChatDataset(_write(tmp_path, [good, line], codes))


@pytest.mark.parametrize('array, message', [
    (np.zeros((4, 3), np.int64), r'shape \(4, 3\), expected \(8, T\)'),
    (np.zeros((8, 3), np.float32), 'holds float32'),
    (np.full((8, 3), 1024), r'codes in \[1024, 1024\]'),
])
def test_bad_code_files_are_named(tmp_path, array, message):
    manifest = _write(tmp_path, [
        dict(messages=[dict(role='assistant', audio='c/x.npy')])
    ], {'x.npy': array})
    with pytest.raises(ValueError, match=r'm.jsonl:1, messages\[0\]: .*'
                       r'x.npy.*' + message):
        AudioChatDataset(manifest)[0]
