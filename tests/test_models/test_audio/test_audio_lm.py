import pytest
import torch

from engine_plugins.models.audio import AUDIO_LM_PRESETS, DualFFNAudioLMCore
from .common import AUDIO_IN, AUDIO_OUT, core_inputs, hand_batch, tiny_core


def test_output_shapes_and_expanded_labels():
    batch = hand_batch()
    out = tiny_core()(**core_inputs(batch))
    # Audio-out frames: (4 + 8) + (2 + 8) + (3 + 8) = 33 model inputs.
    assert batch['audio_out_ids'].shape == (8, 33)
    assert out['audio_logits'].shape == (33, 8, 1026)
    # Row 0: 5 text + 12 audio-in (a full stream, T + 9) + 12 + 10
    # audio-out = 39 positions; row 1: 3 text + 11 audio-out = 14.
    assert out['logits'].shape == (2, 39, 272)
    assert out['attention_mask'].sum(1).tolist() == [39, 14]
    labels = out['expanded_labels']
    assert labels.shape == (2, 39)
    assert (labels[0] != -100).nonzero().flatten().tolist() == [14, 27, 38]
    assert labels[0, [14, 27, 38]].tolist() == [12, 13, 14]
    assert (labels[1] != -100).nonzero().flatten().tolist() == [1, 13]
    assert out['audio_out_mask'].sum().item() == 33


def test_padding_does_not_change_a_row():
    batch = hand_batch()
    core = tiny_core().eval()
    both = core(**core_inputs(batch))
    # Row 1 alone, without padding and without row 0's segments.
    starts = batch['audio_out_ids_start']
    alone = core(
        input_ids=batch['input_ids'][1:, :4],
        attention_mask=batch['attention_mask'][1:, :4],
        label_ids=batch['label_ids'][1:, :4],
        audio_out_ids=batch['audio_out_ids'][:, starts[2]:],
        audio_out_ids_start=torch.tensor([0]))
    torch.testing.assert_close(alone['logits'][0], both['logits'][1, :14])
    torch.testing.assert_close(alone['audio_logits'],
                               both['audio_logits'][starts[2]:])


def test_audio_ffn_only_changes_audio_positions():
    # Tiny has DualFFN only in its last layer, so the audio FFN cannot
    # reach text positions through later attention.
    batch = core_inputs(hand_batch())
    core = tiny_core().eval()
    before = core(**batch)
    with torch.no_grad():
        core.layers[1].audio_mlp.down_proj.weight.add_(0.5)
    after = core(**batch)
    audio = before['audio_out_mask']
    torch.testing.assert_close(after['logits'][~audio],
                               before['logits'][~audio])
    assert not torch.allclose(after['audio_logits'], before['audio_logits'])
    assert not hasattr(core.layers[0], 'audio_mlp')


@pytest.mark.parametrize('audio_in_dual_ffn', [False, True])
def test_audio_in_positions_use_the_audio_ffn_only_on_request(
        audio_in_dual_ffn):
    batch = core_inputs(hand_batch())
    core = tiny_core(audio_in_dual_ffn=audio_in_dual_ffn).eval()
    before = core(**batch)
    with torch.no_grad():
        core.layers[1].audio_mlp.down_proj.weight.add_(0.5)
    after = core(**batch)
    # Row 0, positions 1-12: the audio-in stream.
    changed = ~torch.isclose(after['logits'][0, 1:13],
                             before['logits'][0, 1:13]).all(-1)
    if audio_in_dual_ffn:
        assert bool(changed.all())
    else:
        assert not bool(changed.any())


def test_sdpa_and_eager_attention_agree():
    batch = core_inputs(hand_batch())
    sdpa = tiny_core(seed=3).eval()
    eager = tiny_core(seed=3, attn_implementation='eager').eval()
    torch.testing.assert_close(eager(**batch)['audio_logits'],
                               sdpa(**batch)['audio_logits'],
                               atol=1e-5, rtol=1e-4)


def test_3b_shape_matches_llama_3_2_3b_on_meta_device():
    with torch.device('meta'):
        core = DualFFNAudioLMCore(
            **AUDIO_LM_PRESETS['llama-3.2-3b'],
            audio_out_token_id=128013,
            audio_in_token_id=128015)
    total = sum(p.numel() for p in core.parameters())
    llama_3_2_3b = 3_212_749_824  # published count, tied embeddings
    hidden, inter, layers, vocab = 3072, 8192, 28, 128256
    untied_text_head = vocab * hidden
    audio_ffn_and_norms = layers * (3 * hidden * inter + 2 * hidden)
    codebook_embeddings_and_head = 2 * 8 * 1026 * hidden
    assert total == (llama_3_2_3b + untied_text_head + audio_ffn_and_norms +
                     codebook_embeddings_and_head)
    attn = core.layers[0].self_attn
    assert attn.k_proj.out_features == 8 * 128  # GQA: 8 kv heads
    assert core.rotary_emb.rope_type == 'llama3'


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r'dual_ffn_layers \[5\]'):
        tiny_core(dual_ffn_layers=[5])
    with pytest.raises(ValueError, match='end with <\\|AUDIO_OUT\\|>'):
        tiny_core().generate_audio(torch.tensor([1, AUDIO_IN]))
    with pytest.raises(ValueError, match='8 codebook rows'):
        tiny_core().embed_audio(torch.zeros(4, 2, dtype=torch.long))
    assert AUDIO_OUT == 260
