# Higgs-Audio-v2-shaped 3B (Llama-3.2-3B dims, all 28 layers DualFFN),
# LoRA r16/a32 on attention + both FFNs, bf16 AMP, gradient accumulation.
# Point it at local files (nothing is downloaded):
#   python tools/train.py configs/audio/dualffn_3b_lora_bf16.py \
#     --cfg-options model.pretrained=/ckpt/higgs-audio-v2-3b \
#       model.pretrained_format=higgs \
#       train_dataloader.dataset.tokenizer=/ckpt/higgs-audio-v2-3b \
#       train_dataloader.dataset.manifest=/data/train.jsonl \
#       model.audio_out_token_id=ID model.audio_in_token_id=ID
# Multi-GPU: bash tools/dist_train.sh configs/audio/dualffn_3b_lora_bf16.py 8
_base_ = ['./dualffn_audio_base.py']

model = dict(size='llama-3.2-3b')

train_dataloader = dict(batch_size=2, num_workers=2)
train_cfg = dict(max_iters=20000)
# Effective batch = 2 per GPU x 8 accumulation steps x GPUs.
optim_wrapper = dict(
    type='AmpGradSanityOptimWrapper',
    dtype='bfloat16',
    accumulative_counts=8,
    optimizer=dict(type='AdamW', lr=2e-4, weight_decay=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, end=200),
    dict(
        type='CosineAnnealingLR',
        by_epoch=False,
        begin=200,
        end=20000,
        eta_min=2e-5),
]
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(by_epoch=False, interval=1000, max_keep_ckpts=3))
