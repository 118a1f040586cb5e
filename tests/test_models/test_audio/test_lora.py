import pytest
import torch
from peft import PeftModel, PeftModelForCausalLM

from engine_plugins.models.audio import (ATTENTION, AUDIO_FFN, TEXT_FFN,
                                         DualFFNAudioLM, inject_lora)
from .common import AUDIO_IN, AUDIO_OUT, hand_batch, tiny_core

ALL = dict(attention=ATTENTION, text_ffn=TEXT_FFN, audio_ffn=AUDIO_FFN)


def _lora_count(shapes, r=16):
    """LoRA adds A (r x in) and B (out x r) per Linear."""
    return sum(r * (i + o) for i, o in shapes)


def test_only_lora_parameters_are_trainable_and_counted():
    model = DualFFNAudioLM(
        AUDIO_OUT, AUDIO_IN, size='tiny', lora=dict(target_modules=ALL))
    # Tiny: hidden 64, 4 heads x 16, 2 kv heads (k/v 64 -> 32), FFN 128;
    # 2 layers, DualFFN in layer 1 only.
    attention = [(64, 64), (64, 32), (64, 32), (64, 64)] * 2
    text_ffn = [(64, 128), (64, 128), (128, 64)] * 2
    audio_ffn = [(64, 128), (64, 128), (128, 64)]
    expected = _lora_count(attention + text_ffn + audio_ffn)
    assert expected == 41984
    trainable = {
        n: p.numel()
        for n, p in model.named_parameters() if p.requires_grad
    }
    assert sum(trainable.values()) == expected
    assert all('lora_A' in n or 'lora_B' in n for n in trainable)
    config = model.lm.peft_config['default']
    assert (config.r, config.lora_alpha, config.lora_dropout) == (16, 32, 0.05)
    # task_type=None: a plain PeftModel, which never adds labels=.
    assert type(model.lm) is PeftModel
    assert not isinstance(model.lm, PeftModelForCausalLM)


def test_groups_select_separately_and_empty_groups_fail():
    lm = inject_lora(tiny_core(), dict(audio_ffn=AUDIO_FFN))
    injected = sorted(n for n, m in lm.named_modules()
                      if hasattr(m, 'lora_A') and len(m.lora_A))
    assert [n[len('base_model.model.'):] for n in injected] == [
        'layers.1.audio_mlp.down_proj', 'layers.1.audio_mlp.gate_proj',
        'layers.1.audio_mlp.up_proj'
    ]
    with pytest.raises(ValueError, match=r"group\(s\) \['typo'\]"):
        inject_lora(tiny_core(), dict(attention=ATTENTION,
                                      typo=r'layers\.\d+\.attn\.q'))


def test_every_lora_parameter_gets_a_gradient():
    torch.manual_seed(0)
    model = DualFFNAudioLM(
        AUDIO_OUT, AUDIO_IN, size='tiny', lora=dict(target_modules=ALL))
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    optim = torch.optim.Adam(params.values(), lr=1e-2)
    batch = hand_batch()
    for step in range(2):
        optim.zero_grad()
        losses = model(**batch, mode='loss')
        assert losses['loss_text'] > 0 and losses['loss_audio'] > 0
        (losses['loss_text'] + losses['loss_audio']).backward()
        assert all(p.grad is not None for p in params.values())
        if step == 0:
            # B starts at zero, so only B's gradients are non-zero at first
            assert all(p.grad.abs().sum() > 0 for n, p in params.items()
                       if 'lora_B' in n)
        optim.step()
    assert all(p.grad.abs().sum() > 0 for p in params.values())
    frozen = [p for p in model.parameters() if not p.requires_grad]
    assert frozen and all(p.grad is None for p in frozen)
