# Benchmark base: the DualFFN LoRA CPU quick start on the demo manifest
# (tools/make_audio_demo_data.py data/audio_demo), without checkpoints.
_base_ = ['../../../configs/audio/dualffn_tiny_lora_cpu.py']

train_cfg = dict(max_iters=12)
default_hooks = dict(checkpoint=None, logger=dict(interval=1))
log_processor = dict(by_epoch=False, window_size=1)
# A fixed seed makes the benchmark reproducible: a bug that shows only in
# some batches shows in the same ones on every run.
randomness = dict(seed=0)
