# Benchmark base: the RT-DETR CPU quick start (demo shapes data) at batch 4,
# iteration-based, without validation or checkpoints.
_base_ = ['../../../configs/rtdetr/rtdetr_r18_shapes_cpu.py']

train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False)
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
