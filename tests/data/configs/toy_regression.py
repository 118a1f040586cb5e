# A tiny CPU run of the toy regression task in tests/toy_task.py.
_base_ = ['../../../configs/_base_/default_runtime.py']

custom_imports = dict(imports=['tests.toy_task'], allow_failed_imports=False)

model = dict(type='ToyRegressor', in_features=4, hidden=16)

train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='ToyRegressionDataset', num_samples=64, seed=0))
val_dataloader = dict(
    batch_size=16,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='ToyRegressionDataset', num_samples=32, seed=1))
test_dataloader = val_dataloader
val_evaluator = dict(type='ToyMSEMetric')
test_evaluator = val_evaluator

train_cfg = dict(type='IterBasedTrainLoop', max_iters=8, val_interval=8)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='GradSanityOptimWrapper',
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9))
param_scheduler = []

default_hooks = dict(
    logger=dict(interval=2),
    checkpoint=dict(by_epoch=False, interval=4, max_keep_ckpts=-1))
# Records optimizer state and final weights for the engine tests.
custom_hooks = [dict(type='ToyProbeHook')]
log_processor = dict(by_epoch=False)
randomness = dict(seed=0, deterministic=False)
