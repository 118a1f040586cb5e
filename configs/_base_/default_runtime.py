# Runtime settings shared by every task. Task configs inherit this file and
# override what they need (e.g. a detection visualizer and its hook).

# Names in configs resolve in engine_plugins first, then mmdet, then
# mmengine.
default_scope = 'engine_plugins'

default_hooks = dict(
    # Measures iteration and data time; feeds the ETA of the progress line.
    timer=dict(type='IterTimerHook'),
    # Console/file/TensorBoard logging every `interval` iterations.
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # In this scope 'CheckpointHook' is engine_plugins' SafeCheckpointHook:
    # atomic files and pointer, old checkpoints deleted only after the new
    # one is written, weights checksummed, strict loading (`load_strict`
    # below). `max_keep_ckpts` bounds disk use, `save_last` keeps the
    # resume point.
    checkpoint=dict(
        type='CheckpointHook', interval=1, max_keep_ckpts=3, save_last=True),
    # Seeds each epoch from (seed, epoch) and restarts data workers, so a
    # run resumed at an epoch boundary repeats the uninterrupted one.
    data_seed=dict(type='EpochSeededDataHook'),
    # Re-seeds the distributed sampler each epoch.
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # The sanity engine (engine_plugins.engine.SanityHook): every batch's
    # labels and boxes, every step's loss and gradients (a NaN/Inf step is
    # never applied), full checks on the first 3 iterations (findings stop
    # the run) and every 50 after (findings warn). Needs optim_wrapper.type
    # 'GradSanityOptimWrapper' or 'AmpGradSanityOptimWrapper'; disable with
    # default_hooks=dict(sanity=None).
    sanity=dict(
        type='SanityHook', strict_iters=3, interval=50, policy='skip'),
)

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # nccl on GPUs; engine_plugins.compat falls back to gloo on CPU.
    dist_cfg=dict(backend='nccl'),
)

# Scalars go to work_dir/<timestamp>/vis_data (JSON) and to TensorBoard.
vis_backends = [
    dict(type='LocalVisBackend'),
    dict(type='TensorboardVisBackend'),
]
# No fixed `name`: mmengine keeps one visualizer per name in a process, so
# a fixed name would send the scalars of every later run in the process
# (hyper-parameter trials, tests) to the first run's folder. Unnamed, it
# takes the run's experiment name.
visualizer = dict(type='Visualizer', vis_backends=vis_backends)

log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True)
log_level = 'INFO'

# `load_from`: weights to start from (always a weights_only=True load).
# `resume`: continue from the latest checkpoint in work_dir (or load_from).
# `load_strict`: refuse a checkpoint whose keys or shapes do not fit the
# model (False, or --non-strict on the tools: load what fits and list what
# keeps its initial values, e.g. to fine-tune with a new head).
load_from = None
resume = False
load_strict = True
