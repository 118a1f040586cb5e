# CPU quick start: the tiny DualFFN LM, LoRA on attention + text FFN +
# audio FFN, on the demo manifest (audio codes follow the text):
#   python tools/make_audio_demo_data.py data/audio_demo
#   python tools/train.py configs/audio/dualffn_tiny_lora_cpu.py
_base_ = ['./dualffn_audio_base.py']

train_dataloader = dict(
    batch_size=4,
    # 16 samples repeated: one epoch covers the run (mmengine's iteration
    # loop pauses at every epoch end).
    dataset=dict(repeat=100))
train_cfg = dict(max_iters=300)

# The tiny base is random, not pretrained: its embeddings and heads have
# nothing to adapt, so they train fully next to the adapters (PEFT's
# modules_to_save). With a pretrained base (the 3B config) leave it out.
model = dict(
    lora=dict(modules_to_save=[
        'embed_tokens', 'audio_codebook_embeddings', 'text_lm_head',
        'audio_lm_head'
    ]))
optim_wrapper = dict(optimizer=dict(lr=5e-3))
