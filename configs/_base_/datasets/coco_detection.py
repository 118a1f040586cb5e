# COCO-format detection data through mmdet's CocoDataset and transforms,
# evaluated by FastCocoMetric (mmdet's CocoMetric on faster-coco-eval, the
# same numbers). `data_root` must contain annotations/instances_{train,val}2017
# .json and the train2017/ val2017/ image folders; override `data_root`,
# `ann_file` and `data_prefix` for your own COCO-format data.
dataset_type = 'CocoDataset'
data_root = 'data/coco/'
backend_args = None

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    # Annotations are loaded after Resize: the metric rescales predictions
    # back to the original image and compares there.
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor')),
]

train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/instances_train2017.json',
        data_prefix=dict(img='train2017/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
        pipeline=train_pipeline,
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/instances_val2017.json',
        data_prefix=dict(img='val2017/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader

val_evaluator = dict(
    type='FastCocoMetric',
    ann_file=data_root + 'annotations/instances_val2017.json',
    metric='bbox',
    # maxDets (1, 10, 100): the standard COCO AP. mmdet's default
    # (100, 300, 1000) makes its "mAP" the AP at 1000 detections.
    proposal_nums=(1, 10, 100),
    format_only=False,
    backend_args=backend_args)
test_evaluator = val_evaluator
