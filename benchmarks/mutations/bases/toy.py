# Benchmark base: the engine's toy regression task, iteration-based, no
# validation or checkpoints. Mutants inherit it and add one bug.
_base_ = ['../../../tests/data/configs/toy_regression.py']

train_cfg = dict(
    _delete_=True, type='IterBasedTrainLoop', max_iters=12,
    val_interval=10**6)
val_dataloader = None
val_cfg = None
val_evaluator = None
custom_hooks = []
default_hooks = dict(checkpoint=None, logger=dict(interval=1))
log_processor = dict(by_epoch=False, window_size=1)
# A fixed seed makes the benchmark reproducible: a bug that shows only in
# some batches shows in the same ones on every run.
randomness = dict(seed=0)
