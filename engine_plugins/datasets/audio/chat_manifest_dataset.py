"""JSONL manifest of ChatML-like samples with audio codes in ``.npy`` files.

One JSON object per line::

    {"messages": [
      {"role": "system", "content": "You are a voice."},
      {"role": "user", "content": "Say: abc", "audio": "ref/0.npy"},
      {"role": "assistant", "content": "abc", "audio": "codes/0.npy"}]}

``audio`` paths are relative to the manifest; each file holds integer codes
of shape ``(8, T)`` in ``[0, 1024)``. On system/user turns audio is input
(``<|audio_bos|><|AUDIO|><|audio_eos|>``), on assistant turns output
(``<|audio_out_bos|><|AUDIO_OUT|><|audio_eos|>``). A turn is
``<|im_start|>role\\n content [audio] <|im_end|>\\n``; labels cover the
assistant turns after their header (the placeholder itself excluded).
"""
import json
import os.path as osp
from typing import Dict, List

import numpy as np
import torch
from torch.utils.data import Dataset

from engine_plugins.registry import DATASETS
from engine_plugins.structures import IGNORE_INDEX
from .tokenizer import build_tokenizer

ROLES = ('system', 'user', 'assistant')
NUM_CODEBOOKS, CODEBOOK_SIZE = 8, 1024


def load_codes(path: str, where: str) -> torch.Tensor:
    """Read an ``(8, T)`` code file; errors name ``where`` and the file."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'{where}: audio code file not found: {path}')
    try:
        codes = np.load(path, allow_pickle=False)
    except Exception as exc:  # numpy raises several types for bad files
        raise ValueError(f'{where}: cannot read {path}: {exc}') from exc
    if codes.ndim != 2 or codes.shape[0] != NUM_CODEBOOKS or \
            codes.shape[1] == 0:
        raise ValueError(f'{where}: {path} has shape {codes.shape}, '
                         f'expected ({NUM_CODEBOOKS}, T) with T > 0')
    if not np.issubdtype(codes.dtype, np.integer):
        raise ValueError(f'{where}: {path} holds {codes.dtype}, expected '
                         'integer codes')
    if codes.min() < 0 or codes.max() >= CODEBOOK_SIZE:
        raise ValueError(f'{where}: {path} has codes in [{codes.min()}, '
                         f'{codes.max()}], expected [0, {CODEBOOK_SIZE})')
    return torch.from_numpy(codes.astype(np.int64))


@DATASETS.register_module()
class AudioChatDataset(Dataset):
    """Tokenized chat samples with audio codes, for ``audio_lm_collate``.

    Args:
        manifest: Path of the JSONL file.
        tokenizer: ``'byte'`` or a local HF tokenizer directory.
        repeat: Repeat the samples (small sets for iteration-based loops).

    Example:
        >>> dataset = dict(type='AudioChatDataset',
        ...                manifest='data/audio_demo/train.jsonl')
    """

    def __init__(self,
                 manifest: str,
                 tokenizer: str = 'byte',
                 repeat: int = 1) -> None:
        if not osp.isfile(manifest):
            raise FileNotFoundError(
                f'AudioChatDataset: manifest not found: {manifest} (set '
                'manifest= to your JSONL file; the demo manifest is written '
                'by python tools/make_audio_demo_data.py data/audio_demo)')
        self.manifest = manifest
        self.tokenizer = build_tokenizer(tokenizer)
        self.repeat = repeat
        self.samples = self._read(manifest)
        if not self.samples:
            raise ValueError(f'{manifest} has no samples')

    def _read(self, manifest: str) -> List[List[dict]]:
        root = osp.dirname(osp.abspath(manifest))
        samples = []
        with open(manifest) as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                where = f'{manifest}:{lineno}'
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f'{where}: invalid JSON: {exc}') from None
                messages = record.get('messages') if isinstance(
                    record, dict) else None
                if not isinstance(messages, list) or not messages:
                    raise ValueError(f'{where}: expected {{"messages": '
                                     '[...]}} with at least one turn')
                turns = []
                for i, msg in enumerate(messages):
                    at = f'{where}, messages[{i}]'
                    role = msg.get('role') if isinstance(msg, dict) else None
                    if role not in ROLES:
                        raise ValueError(f'{at}: role {role!r} is not one of '
                                         f'{ROLES}')
                    unknown = set(msg) - {'role', 'content', 'audio'}
                    if unknown:
                        raise ValueError(f'{at}: unknown keys '
                                         f'{sorted(unknown)}')
                    content = msg.get('content', '')
                    if not isinstance(content, str):
                        raise ValueError(f'{at}: content must be a string')
                    audio = msg.get('audio')
                    if audio is not None:
                        audio = osp.join(root, audio)
                        if not osp.isfile(audio):
                            raise FileNotFoundError(
                                f'{at}: audio code file not found: {audio}')
                    if not content and audio is None:
                        raise ValueError(f'{at}: a turn needs content or '
                                         'audio')
                    turns.append(dict(role=role, content=content,
                                      audio=audio, where=at))
                if not any(t['role'] == 'assistant' for t in turns):
                    raise ValueError(f'{where}: no assistant turn, nothing '
                                     'to learn')
                samples.append(turns)
        return samples

    def __len__(self) -> int:
        return len(self.samples) * self.repeat

    def __getitem__(self, idx: int) -> Dict[str, object]:
        tok = self.tokenizer
        ids: List[int] = []
        labels: List[int] = []
        audio_in, audio_out = [], []
        for turn in self.samples[idx % len(self.samples)]:
            learn = turn['role'] == 'assistant'
            header = [tok.token_id('<|im_start|>')] + tok.encode(
                turn['role'] + '\n')
            body = tok.encode(turn['content'])
            if turn['audio'] is not None:
                codes = load_codes(turn['audio'], turn['where'])
                if learn:
                    body += [tok.token_id('<|audio_out_bos|>'),
                             tok.token_id('<|AUDIO_OUT|>')]
                    audio_out.append(codes)
                else:
                    body += [tok.token_id('<|audio_bos|>'),
                             tok.token_id('<|AUDIO|>')]
                    audio_in.append(codes)
                body.append(tok.token_id('<|audio_eos|>'))
            body.append(tok.token_id('<|im_end|>'))
            tail = tok.encode('\n')
            ids += header + body + tail
            placeholder = tok.token_id('<|AUDIO_OUT|>')
            labels += [IGNORE_INDEX] * len(header) + [
                t if learn and t != placeholder else IGNORE_INDEX for t in body
            ] + [IGNORE_INDEX] * len(tail)
        return dict(
            input_ids=torch.tensor(ids),
            label_ids=torch.tensor(labels),
            audio_in=audio_in,
            audio_out=audio_out)
