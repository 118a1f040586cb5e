# CPU quick-start: PSALM YOLO n (P3-P5) on the demo shapes data (3 classes,
# written to data/demo_shapes/ on first use, no download) at 256 px.
#
#   python tools/train.py configs/psalm_yolo/psalm_yolo_n_shapes_cpu.py
#
# The model and schedule come from psalm_yolo_model.py, the data (root,
# generated-data settings, batch 8 with one loader process, metric) from
# configs/_base_/datasets/demo_shapes.py; this file sets YOLOv8's pipelines
# at 256 px and a shorter schedule.
_base_ = ['./psalm_yolo_model.py', '../_base_/datasets/demo_shapes.py']

img_scale = _base_.img_scale  # (w, h) network input: the data base's 256
num_classes = 3  # circle, square, triangle

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PrefilledCachedMosaic',
        img_scale=img_scale,
        pad_val=114.0,
        max_cached_images=20,
        random_pop=False),
    dict(
        type='RandomAffine',
        max_rotate_degree=0.0,
        max_shear_degree=0.0,
        max_translate_ratio=0.1,
        scaling_ratio_range=(0.5, 1.5),
        border=(-img_scale[0] // 2, -img_scale[1] // 2),
        border_val=(114, 114, 114)),
    dict(type='YOLOXHSVRandomAug'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1, 1), keep_empty=False),
    dict(type='PackDetInputs'),
]
close_mosaic_epochs = 5
train_pipeline_stage2 = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='LetterBox', scale=img_scale),
    dict(type='YOLOXHSVRandomAug'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1, 1), keep_empty=False),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LetterBox', scale=img_scale),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor', 'pad_param')),
]

train_dataloader = dict(
    dataset=dict(
        # The smallest image side kept, as in psalm_yolo_base.py (no demo
        # image is under 192 px).
        filter_cfg=dict(min_size=2),
        pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

# P3-P5 as in psalm_yolo_n_p3-p5_coco.py; a narrower fusion.
model = dict(
    backbone=dict(out_indices=(2, 3, 4)),
    fusion=dict(num_classes=num_classes, embed_dims=32),
    bbox_head=dict(test_cfg=dict(max_per_img=100)))

max_epochs = 30
train_cfg = dict(max_epochs=max_epochs, val_interval=5)
base_lr = 0.02
optim_wrapper = dict(optimizer=dict(lr=base_lr))
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
        end=100),
    dict(
        type='LinearLR',
        start_factor=1.0,
        end_factor=0.05,
        by_epoch=True,
        begin=0,
        end=max_epochs,
        convert_to_iter_based=True),
]
custom_hooks = [
    dict(
        type='EMAHook',
        ema_type='ExpMomentumEMA',
        momentum=0.0002,
        update_buffers=True,
        strict_load=False,
        priority=49),
    dict(
        type='CloseMosaicHook',
        num_last_epochs=close_mosaic_epochs,
        switch_pipeline=train_pipeline_stage2),
]
default_hooks = dict(
    checkpoint=dict(interval=5, max_keep_ckpts=2),
    logger=dict(interval=10))

# Search spaces for tools/hpo.py (engine_plugins/utils/search_space.py),
# e.g. `python tools/hpo.py configs/psalm_yolo/psalm_yolo_n_shapes_cpu.py
# --epochs-per-trial 5 --n-trials 10`: COCO mAP on the validation images,
# higher is better.
hpo = dict(
    monitor='coco/bbox_mAP',
    direction='maximize',
    spaces=dict(
        narrow={
            'optim_wrapper.optimizer.lr':
            dict(type='float', low=0.005, high=0.05, log=True, name='lr'),
            'model.bbox_head.loss.box_weight':
            dict(type='float', low=3.0, high=10.0, name='box_weight'),
        }))
