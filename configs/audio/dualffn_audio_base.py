# DualFFN audio-token LM with PEFT LoRA: what every audio config shares.
# Task configs inherit this file and set the size, data and schedule.
_base_ = ['../_base_/default_runtime.py']

# Token ids of the byte tokenizer (engine_plugins.datasets.audio); with a
# Higgs/Llama-3 tokenizer directory use that tokenizer's ids.
audio_out_token_id = 260  # <|AUDIO_OUT|>
audio_in_token_id = 259  # <|AUDIO|>

# LoRA target groups: full-name regexes over the network's Linear modules,
# so attention, text FFN and audio FFN can be chosen separately. A group
# that matches nothing is an error; injected names are logged.
lora_attention = r'layers\.\d+\.self_attn\.(q|k|v|o)_proj'
lora_text_ffn = r'layers\.\d+\.mlp\.(gate|up|down)_proj'
lora_audio_ffn = r'layers\.\d+\.audio_mlp\.(gate|up|down)_proj'

model = dict(
    type='DualFFNAudioLM',
    size='tiny',
    audio_out_token_id=audio_out_token_id,
    audio_in_token_id=audio_in_token_id,
    # e.g. arch=dict(dual_ffn_layers=[0, 1]) overrides the preset.
    arch=None,
    # None trains every parameter (full fine-tuning).
    lora=dict(
        r=16,
        lora_alpha=32,
        lora_dropout=0.05,
        target_modules=dict(
            attention=lora_attention,
            text_ffn=lora_text_ffn,
            audio_ffn=lora_audio_ffn)),
    # A local safetensors directory; 'higgs' maps Higgs Audio v2 keys.
    pretrained=None,
    pretrained_format='native',
    text_loss_weight=1.0,
    audio_loss_weight=1.0)

train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=True),
    # Pads text, applies the delay pattern, builds the audio labels; every
    # key reaches the model under its own name.
    collate_fn=dict(type='audio_lm_collate'),
    dataset=dict(
        type='AudioChatDataset',
        manifest='data/audio_demo/train.jsonl',
        tokenizer='byte'))

train_cfg = dict(type='IterBasedTrainLoop', max_iters=300)
# accumulative_counts: gradient accumulation (mmengine's OptimWrapper).
optim_wrapper = dict(
    type='GradSanityOptimWrapper',
    accumulative_counts=1,
    clip_grad=dict(max_norm=1.0),
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, end=20),
]

default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(by_epoch=False, interval=300, max_keep_ckpts=2))
log_processor = dict(by_epoch=False, window_size=10)
visualizer = dict(vis_backends=[dict(type='LocalVisBackend')])
randomness = dict(seed=0)
