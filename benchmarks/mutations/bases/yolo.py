# Benchmark base: the PSALM YOLO CPU quick start (mosaic pipeline, demo
# shapes data) at batch 4, iteration-based, without validation,
# checkpoints or the close-mosaic switch.
_base_ = ['../../../configs/psalm_yolo/psalm_yolo_n_shapes_cpu.py']

train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False)
train_cfg = dict(
    _delete_=True, type='IterBasedTrainLoop', max_iters=12,
    val_interval=10**6)
val_dataloader = None
val_cfg = None
val_evaluator = None
custom_hooks = [
    dict(
        type='EMAHook',
        ema_type='ExpMomentumEMA',
        momentum=0.0002,
        update_buffers=True,
        strict_load=False,
        priority=49)
]
default_hooks = dict(checkpoint=None, logger=dict(interval=1))
log_processor = dict(by_epoch=False, window_size=1)
# A fixed seed makes the benchmark reproducible: a bug that shows only in
# some batches shows in the same ones on every run.
randomness = dict(seed=0)
