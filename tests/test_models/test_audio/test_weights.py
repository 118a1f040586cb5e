import json

import pytest
import torch
from safetensors.torch import save_file

from engine_plugins.models.audio import (DualFFNAudioLM, load_weights,
                                         map_higgs_state_dict, save_weights)
from .common import AUDIO_IN, AUDIO_OUT, core_inputs, hand_batch, tiny_core

# Our key -> the Higgs Audio v2 key (the documented mapping, reversed).
HIGGS_NAMES = {
    'text_lm_head.weight': 'audio_decoder_proj.text_lm_head.weight',
    'audio_lm_head.weight': 'audio_decoder_proj.audio_lm_head.weight',
}


def test_round_trip_of_our_own_save(tmp_path):
    src, dst = tiny_core(seed=1).eval(), tiny_core(seed=2).eval()
    save_weights(src, str(tmp_path))
    assert load_weights(dst, str(tmp_path)) == []
    for key, value in src.state_dict().items():
        assert torch.equal(dst.state_dict()[key], value), key
    batch = core_inputs(hand_batch())
    torch.testing.assert_close(dst(**batch)['audio_logits'],
                               src(**batch)['audio_logits'])


def test_lora_model_exports_merged_weights(tmp_path):
    torch.manual_seed(0)
    model = DualFFNAudioLM(
        AUDIO_OUT, AUDIO_IN,
        lora=dict(target_modules=r'layers\.\d+\.(mlp|audio_mlp)\..*'))
    batch = hand_batch()
    optim = torch.optim.Adam(
        [p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(2):  # make lora_B non-zero
        losses = model(**batch, mode='loss')
        optim.zero_grad()
        (losses['loss_text'] + losses['loss_audio']).backward()
        optim.step()
    model.eval()
    model.export_weights(str(tmp_path))
    plain = DualFFNAudioLM(
        AUDIO_OUT, AUDIO_IN, pretrained=str(tmp_path)).eval()
    with torch.no_grad():
        torch.testing.assert_close(plain(**batch)['audio_logits'],
                                   model(**batch)['audio_logits'],
                                   atol=1e-5, rtol=1e-4)
    # The exported model really differs from the untrained base.
    base = model.core.layers[0].mlp.up_proj.base_layer.weight
    assert not torch.equal(plain.core.layers[0].mlp.up_proj.weight, base)


def test_higgs_checkpoint_directory_sharded(tmp_path):
    src = tiny_core(seed=1)
    state = {HIGGS_NAMES.get(k, k): v for k, v in src.state_dict().items()}
    # Whisper audio-in encoder and RoPE buffers are in the checkpoint too.
    state['audio_tower.conv1.weight'] = torch.zeros(4, 2, 3)
    state['audio_encoder_proj.linear.weight'] = torch.zeros(4, 4)
    state['layers.0.self_attn.rotary_emb.inv_freq'] = torch.zeros(8)
    keys = sorted(state)
    shards = {'model-00001-of-00002.safetensors': keys[:20],
              'model-00002-of-00002.safetensors': keys[20:]}
    for name, part in shards.items():
        save_file({k: state[k].contiguous() for k in part},
                  str(tmp_path / name))
    with open(tmp_path / 'model.safetensors.index.json', 'w') as f:
        json.dump(dict(weight_map={k: n for n, part in shards.items()
                                   for k in part}), f)
    dst = tiny_core(seed=2)
    skipped = load_weights(dst, str(tmp_path), key_format='higgs')
    assert sorted(skipped) == [
        'audio_encoder_proj.linear.weight', 'audio_tower.conv1.weight',
        'layers.0.self_attn.rotary_emb.inv_freq'
    ]
    for key, value in src.state_dict().items():
        assert torch.equal(dst.state_dict()[key], value), key
    # The registered model loads before LoRA is injected.
    model = DualFFNAudioLM(
        AUDIO_OUT, AUDIO_IN, pretrained=str(tmp_path),
        pretrained_format='higgs',
        lora=dict(target_modules=r'layers\.\d+\.audio_mlp\.up_proj'))
    assert torch.equal(model.core.audio_lm_head.weight,
                       src.audio_lm_head.weight)


def test_higgs_prefix_and_unsupported_keys():
    mapped, _ = map_higgs_state_dict(
        {'model.layers.0.mlp.up_proj.weight': torch.zeros(1)})
    assert list(mapped) == ['layers.0.mlp.up_proj.weight']
    with pytest.raises(KeyError, match='audio_out_embed_projector.weight'):
        map_higgs_state_dict({'audio_out_embed_projector.weight': 0})
    with pytest.raises(KeyError, match='layers.3.audio_attn.q_proj'):
        map_higgs_state_dict({'layers.3.audio_attn.q_proj.weight': 0})


def test_bad_directories_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='nowhere'):
        load_weights(tiny_core(), str(tmp_path / 'nowhere'))
    with pytest.raises(FileNotFoundError, match='no \\*.safetensors'):
        load_weights(tiny_core(), str(tmp_path))
    state = tiny_core().state_dict()
    state['extra.weight'] = torch.zeros(1)
    save_file({k: v.contiguous() for k, v in state.items()},
              str(tmp_path / 'model.safetensors'))
    with pytest.raises(KeyError, match=r"unexpected \['extra.weight'\]"):
        load_weights(tiny_core(), str(tmp_path))
    del state['extra.weight']
    state['norm.weight'] = torch.zeros(3)
    save_file({k: v.contiguous() for k, v in state.items()},
              str(tmp_path / 'model.safetensors'))
    with pytest.raises(ValueError, match=r'norm.weight has shape \(3,\)'):
        load_weights(tiny_core(), str(tmp_path))
    (tmp_path / 'model.safetensors').write_bytes(b'not safetensors')
    with pytest.raises(ValueError, match='cannot read .*model.safetensors'):
        load_weights(tiny_core(), str(tmp_path))
