# CPU quick start: a slim RT-DETR (ResNet-18 at half width, trained from
# scratch) on the demo shapes data (3 classes, written to data/demo_shapes/
# on first use, no download) at 256 px.
#
#   python tools/train.py configs/rtdetr/rtdetr_r18_shapes_cpu.py
_base_ = './rtdetr_r18_coco.py'

data_root = 'data/demo_shapes/'
dataset_type = 'DemoShapesDataset'
img_scale = (256, 256)
num_classes = 3
# Settings of the generated data (see engine_plugins/datasets/demo_shapes).
demo_data = dict(num_train=256, num_val=64, seed=0)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1, 1), keep_empty=False),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor')),
]

train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    batch_sampler=None,  # plain shuffled batches
    persistent_workers=True,
    pin_memory=False,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        generate=demo_data,
        ann_file='annotations/train.json',
        data_prefix=dict(img='train/'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=1,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        generate=demo_data,
        ann_file='annotations/val.json',
        data_prefix=dict(img='val/'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/val.json')
test_evaluator = val_evaluator

# No ImageNet weights offline: the backbone trains from scratch at the full
# lr. Widths are cut to fit a CPU budget.
model = dict(
    data_preprocessor=dict(mean=[0.0, 0.0, 0.0], std=[255.0, 255.0, 255.0]),
    backbone=dict(base_channels=32, init_cfg=None),
    encoder=dict(hidden_dim=64, num_heads=4, ffn_dim=256, num_csp_blocks=1),
    decoder=dict(
        embed_dims=64,
        num_queries=100,
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
