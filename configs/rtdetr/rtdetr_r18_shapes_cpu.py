# CPU quick start: a slim RT-DETR (ResNet-18 at half width, trained from
# scratch) on the demo shapes data (3 classes, written to data/demo_shapes/
# on first use, no download) at 256 px.
#
#   python tools/train.py configs/rtdetr/rtdetr_r18_shapes_cpu.py
#
# The model and schedule come from rtdetr_r50_model.py, cut down here; the
# data (root, generated-data settings, flip and resize to fit 256 px, batch
# 8 with one loader process, metric) from configs/_base_/datasets/
# demo_shapes.py, whose pipelines this file keeps.
_base_ = ['./rtdetr_r50_model.py', '../_base_/datasets/demo_shapes.py']

num_classes = 3  # circle, square, triangle

# ResNet-18 with all stages and BN trained (as rtdetr_r18_coco.py), a
# half-width CCFM and 3 decoder layers. No ImageNet weights offline: the
# backbone trains from scratch at the full lr. Widths are cut to fit a CPU
# budget.
model = dict(
    data_preprocessor=dict(mean=[0.0, 0.0, 0.0], std=[255.0, 255.0, 255.0]),
    backbone=dict(
        depth=18,
        base_channels=32,
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        init_cfg=None),
    encoder=dict(
        hidden_dim=64,
        num_heads=4,
        ffn_dim=256,
        num_csp_blocks=1,
        expansion=0.5),
    decoder=dict(
        embed_dims=64,
        num_queries=100,
        num_layers=3,
        num_heads=4,
        ffn_channels=256,
        denoising=dict(num_denoising=50)),
    criterion=dict(num_classes=num_classes),
    test_cfg=dict(max_per_img=100))

max_epochs = 60
train_cfg = dict(max_epochs=max_epochs, val_interval=10)
optim_wrapper = dict(
    optimizer=dict(lr=4e-4),
    paramwise_cfg=dict(custom_keys=dict(backbone=dict(lr_mult=1.0))))
# Warm-up, then lr / 10 for the last 10 epochs.
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
        end=100),
    dict(type='MultiStepLR', by_epoch=True, milestones=[50], gamma=0.1),
]
custom_hooks = [
    dict(
        type='EMAHook',
        ema_type='ExpMomentumEMA',
        momentum=0.0005,
        gamma=200,
        update_buffers=True,
        strict_load=False,
        priority=49),
]
default_hooks = dict(
    checkpoint=dict(interval=10, max_keep_ckpts=2),
    logger=dict(interval=10))
