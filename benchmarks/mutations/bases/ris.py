# Benchmark base: the RIS 8x8 CPU quick start at batch 32, without
# validation or checkpoints.
_base_ = ['../../../configs/ris/ris_upa8x8_cpu.py']

# The mutants were written against T = 32 and uncorrelated sources.
train_dataloader = dict(
    batch_size=32, dataset=dict(num_snapshots=32, correlation=0.0))
train_cfg = dict(max_iters=12, val_interval=10**6)
val_dataloader = None
val_cfg = None
val_evaluator = None
default_hooks = dict(checkpoint=None, logger=dict(interval=1))
log_processor = dict(by_epoch=False, window_size=1)
# A fixed seed makes the benchmark reproducible: a bug that shows only in
# some batches shows in the same ones on every run.
randomness = dict(seed=0)
