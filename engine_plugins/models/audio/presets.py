"""Model sizes of the DualFFN audio LM, by name."""
from typing import Dict

_LLAMA3_ROPE = dict(
    rope_type='llama3',
    rope_theta=500000.0,
    factor=32.0,
    low_freq_factor=1.0,
    high_freq_factor=4.0,
    original_max_position_embeddings=8192)

# Sizes by name. 'llama-3.2-3b' matches Llama-3.2-3B (and Higgs Audio v2
# 3B, whose 28 layers are all DualFFN); 'tiny' is for tests and the CPU
# quick start, 'mid' for benchmarks.
AUDIO_LM_PRESETS: Dict[str, dict] = {
    'tiny':
    dict(
        vocab_size=272,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        dual_ffn_layers=[1],
        max_position_embeddings=2048),
    'mid':
    dict(
        vocab_size=272,
        hidden_size=512,
        intermediate_size=1408,
        num_hidden_layers=8,
        num_attention_heads=8,
        num_key_value_heads=4,
        dual_ffn_layers=list(range(8)),
        max_position_embeddings=4096),
    'llama-3.2-3b':
    dict(
        vocab_size=128256,
        hidden_size=3072,
        intermediate_size=8192,
        num_hidden_layers=28,
        num_attention_heads=24,
        num_key_value_heads=8,
        head_dim=128,
        rms_norm_eps=1e-5,
        rope_parameters=_LLAMA3_ROPE,
        max_position_embeddings=131072,
        dual_ffn_layers=list(range(28))),
}
