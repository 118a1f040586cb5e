"""A small manifest whose audio codes are a fixed function of the text.

Each sample asks for a short random word; the assistant answers with the
word and its "audio": ``FRAMES_PER_CHAR`` frames per character, with
``code[k, t] = (37 * ord(c) + 101 * k + 17 * f) % 1024`` for character
``c`` and frame ``f`` within it. A model can learn this exactly, so the
quick start's loss falls and decoding can be checked code for code.
Every second sample also carries an audio-in prompt (the codes of a fixed
"reference" word) on the user turn.
"""
import io
import json
import os
import os.path as osp
import random

import numpy as np

from engine_plugins.engine.checkpoints import (write_atomically,
                                               write_text_atomically)

FRAMES_PER_CHAR = 2
LETTERS = 'abcdefghij'


def word_codes(word: str) -> np.ndarray:
    """The ``(8, FRAMES_PER_CHAR * len(word))`` codes of ``word``."""
    k = np.arange(8)[:, None]
    cols = [(37 * ord(c) + 101 * k + 17 * f) % 1024 for c in word
            for f in range(FRAMES_PER_CHAR)]
    return np.concatenate(cols, axis=1).astype(np.int16)


def make_audio_demo_data(out_dir: str,
                         num_samples: int = 16,
                         seed: int = 0,
                         min_len: int = 2,
                         max_len: int = 4) -> str:
    """Write ``out_dir/train.jsonl`` and ``out_dir/codes/*.npy``.

    Every file is written atomically (a temporary file renamed into
    place), the manifest last, so processes that write the same data at
    once (test workers, ranks) never read a half-written file.

    Returns:
        The manifest path.
    """
    rng = random.Random(seed)
    os.makedirs(osp.join(out_dir, 'codes'), exist_ok=True)
    _save_codes(osp.join(out_dir, 'codes', 'reference.npy'), word_codes('ab'))
    lines = []
    for i in range(num_samples):
        word = ''.join(
            rng.choice(LETTERS)
            for _ in range(rng.randint(min_len, max_len)))
        name = f'codes/{i:04d}.npy'
        _save_codes(osp.join(out_dir, name), word_codes(word))
        user = dict(role='user', content=f'Say: {word}')
        if i % 2:
            user['audio'] = 'codes/reference.npy'
        lines.append(
            json.dumps(
                dict(messages=[
                    dict(role='system', content='Speak.'), user,
                    dict(role='assistant', content=word, audio=name)
                ])))
    manifest = osp.join(out_dir, 'train.jsonl')
    write_text_atomically(manifest, '\n'.join(lines) + '\n')
    return manifest


def _save_codes(path: str, codes: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, codes)
    write_atomically(path, buffer.getvalue())
