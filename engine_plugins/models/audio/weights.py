"""Weights from a local safetensors directory; never downloads.

``save_weights`` / ``load_weights`` round-trip our own layout. With
``key_format='higgs'`` a Higgs Audio v2 checkpoint directory loads through
this key mapping (our module names follow Higgs's, so most keys are equal):

==========================================  ==============================
Higgs Audio v2 key                          ours
==========================================  ==============================
``[model.]embed_tokens.weight``             ``embed_tokens.weight``
``[model.]layers.{i}.self_attn.{q,k,v,o}    same
_proj.weight``
``[model.]layers.{i}.{mlp,audio_mlp}.       same
{gate,up,down}_proj.weight``
``[model.]layers.{i}.[audio_]input_         same
layernorm.weight``, ``..post_attention_..``
``[model.]norm.weight``                     ``norm.weight``
``audio_codebook_embeddings.weight``        same (codebook k at k * 1026)
``audio_decoder_proj.text_lm_head.weight``  ``text_lm_head.weight``
``audio_decoder_proj.audio_lm_head.weight`` ``audio_lm_head.weight``
``audio_tower.*``, ``audio_encoder_proj.*``  skipped (Whisper audio-in
                                            encoder; audio-in is codes here)
``*rotary_emb.inv_freq``                    skipped (recomputed)
``audio_out_embed_projector.*``,            error: not implemented here
``layers.{i}.audio_attn.*``
==========================================  ==============================
"""
import glob
import json
import logging
import os
import os.path as osp
from typing import Dict, List, Tuple

import torch
import torch.nn as nn
from mmengine.logging import print_log
from safetensors.torch import load_file, save_file

WEIGHTS_NAME = 'model.safetensors'
HIGGS_RENAMES = {
    'audio_decoder_proj.text_lm_head.': 'text_lm_head.',
    'audio_decoder_proj.audio_lm_head.': 'audio_lm_head.',
}
HIGGS_SKIPPED = ('audio_tower.', 'audio_encoder_proj.')
HIGGS_UNSUPPORTED = ('audio_out_embed_projector.', '.audio_attn.',
                     '.audio_post_audio_attn_layer_norm.')


def save_weights(model: nn.Module, directory: str) -> str:
    """Write ``model.state_dict()`` to ``directory/model.safetensors``."""
    os.makedirs(directory, exist_ok=True)
    path = osp.join(directory, WEIGHTS_NAME)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, path, metadata=dict(format='pt'))
    return path


def read_safetensors_dir(directory: str) -> Dict[str, torch.Tensor]:
    """All tensors of the ``*.safetensors`` files in ``directory``."""
    if not osp.isdir(directory):
        raise FileNotFoundError(f'weights directory not found: {directory}')
    index = osp.join(directory, 'model.safetensors.index.json')
    if osp.isfile(index):
        with open(index) as f:
            files = sorted(set(json.load(f)['weight_map'].values()))
        files = [osp.join(directory, name) for name in files]
    else:
        files = sorted(glob.glob(osp.join(directory, '*.safetensors')))
    if not files:
        raise FileNotFoundError(f'no *.safetensors file in {directory}')
    state = {}
    for path in files:
        if not osp.isfile(path):
            raise FileNotFoundError(f'{index} names a missing shard: {path}')
        try:
            state.update(load_file(path))
        except Exception as exc:  # safetensors raises its own types
            raise ValueError(f'cannot read {path}: {exc}') from exc
    return state


def map_higgs_state_dict(
        state: Dict[str, torch.Tensor]
) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """Rename Higgs Audio v2 keys to ours (table above).

    Returns:
        The mapped state dict and the skipped keys.

    Raises:
        KeyError: a key of a Higgs feature this model does not have.
    """
    mapped, skipped = {}, []
    for key, value in state.items():
        name = key[len('model.'):] if key.startswith('model.') else key
        if name.startswith(HIGGS_SKIPPED) or name.endswith(
                'rotary_emb.inv_freq'):
            skipped.append(key)
            continue
        if any(part in f'.{name}' for part in HIGGS_UNSUPPORTED):
            raise KeyError(f'checkpoint key {key!r} belongs to a Higgs '
                           'feature this model does not implement '
                           '(audio-out embed projector / audio attention)')
        for old, new in HIGGS_RENAMES.items():
            if name.startswith(old):
                name = new + name[len(old):]
        mapped[name] = value
    return mapped, skipped


def load_weights(model: nn.Module,
                 directory: str,
                 key_format: str = 'native') -> List[str]:
    """Load a local safetensors directory into ``model`` (strict).

    Args:
        model: The network (not LoRA-wrapped).
        directory: Directory of ``*.safetensors`` (sharded with an index
            file, or not).
        key_format: ``'native'`` (our saves) or ``'higgs'``.

    Returns:
        Keys of the checkpoint that were skipped.

    Raises:
        KeyError: missing or unexpected keys (all named).
        ValueError: a shape mismatch (key and both shapes named).
    """
    state = read_safetensors_dir(directory)
    skipped: List[str] = []
    if key_format == 'higgs':
        state, skipped = map_higgs_state_dict(state)
    elif key_format != 'native':
        raise ValueError(
            f"key_format must be 'native' or 'higgs', got {key_format!r}")
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise KeyError(f'{directory} ({key_format} keys) does not fit '
                       f'{type(model).__name__}: missing {missing[:10]}'
                       f'{" ..." if len(missing) > 10 else ""}, unexpected '
                       f'{unexpected[:10]}'
                       f'{" ..." if len(unexpected) > 10 else ""}')
    for key, value in state.items():
        if value.shape != own[key].shape:
            raise ValueError(f'{directory}: {key} has shape '
                             f'{tuple(value.shape)}, the model expects '
                             f'{tuple(own[key].shape)}')
    model.load_state_dict(state, strict=True)
    print_log(
        f'loaded {len(state)} tensors from {directory}'
        f'{f" (skipped {len(skipped)})" if skipped else ""}',
        logger='current',
        level=logging.INFO)
    return skipped
