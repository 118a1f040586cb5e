# PSALM dual-head YOLO on COCO 2017 at 640 px: the model and schedule of
# psalm_yolo_model.py (YOLOv8 CSPDarknet n size, PAFPN with P2-P5, PSALM
# fusion, dual head; SGD for 300 epochs, EMA) on the COCO dataset base, with
# YOLOv8's pipelines and batch sizes. Size variants (n, s) and the P3-P5
# variant change only the backbone: the neck, fusion and head follow its
# channels and strides.
_base_ = ['./psalm_yolo_model.py', '../_base_/datasets/coco_detection.py']

# ---- data ------------------------------------------------------------------
# COCO 2017 from the dataset base (data_root, annotation files, the
# FastCocoMetric with the standard maxDets); YOLOv8's pipelines and batch
# sizes here.
img_scale = (640, 640)  # (w, h) network input
backend_args = None

# Mosaic of 4 images (2x img_scale), then a random scale/translate back to
# img_scale, colour jitter and flip. Images with no boxes are kept: they
# teach the background.
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PrefilledCachedMosaic',
        img_scale=img_scale,
        pad_val=114.0,
        max_cached_images=40,
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
# The last `close_mosaic_epochs` epochs train on single letterboxed images
# (CloseMosaicHook below).
close_mosaic_epochs = 10
train_pipeline_stage2 = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='LetterBox', scale=img_scale),
    dict(
        type='RandomAffine',
        max_rotate_degree=0.0,
        max_shear_degree=0.0,
        max_translate_ratio=0.1,
        scaling_ratio_range=(0.5, 1.5),
        border_val=(114, 114, 114)),
    dict(type='YOLOXHSVRandomAug'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1, 1), keep_empty=False),
    dict(type='PackDetInputs'),
]
# `pad_param` lets the head undo the centred padding before rescaling.
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LetterBox', scale=img_scale),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor', 'pad_param')),
]

train_dataloader = dict(
    batch_size=16,
    num_workers=8,
    pin_memory=True,
    batch_sampler=None,  # plain shuffled batches, not grouped by aspect
    dataset=dict(
        filter_cfg=dict(filter_empty_gt=False, min_size=2),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8, num_workers=4, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

# The model base's EMA, then the switch to train_pipeline_stage2.
custom_hooks = [
    *_base_.custom_hooks,
    dict(
        type='CloseMosaicHook',
        num_last_epochs=close_mosaic_epochs,
        switch_pipeline=train_pipeline_stage2),
]
