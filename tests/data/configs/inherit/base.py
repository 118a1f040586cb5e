model = dict(
    type='Detector',
    backbone=dict(type='ResNet', depth=50, frozen_stages=1),
    neck=dict(type='FPN', out_channels=256))
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=1e-4))
train_cfg = dict(max_epochs=12)
