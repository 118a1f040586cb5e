# The demo shapes data: COCO-format detection of 3 classes (circle, square,
# triangle) on noisy images 192-256 px high and 192-320 px wide, one in ten
# without shapes. DemoShapesDataset writes it to `data_root` on first use
# (no download); FastCocoMetric evaluates it as COCO. The CPU quick starts
# inherit it next to a model base, e.g.
#
#   _base_ = ['./psalm_yolo_model.py', '../_base_/datasets/demo_shapes.py']
#
# and a task that needs other transforms restates the pipelines and hands
# them to the dataloaders:
#
#   train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
#   val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
#   test_dataloader = val_dataloader
dataset_type = 'DemoShapesDataset'
data_root = 'data/demo_shapes/'  # written here on first use
# Settings of the generated data (see engine_plugins/datasets/demo_shapes);
# the datasets and the metric on one data_root must use the same ones.
demo_data = dict(num_train=256, num_val=64, seed=0)
img_scale = (256, 256)  # (w, h) network input of the pipelines below
backend_args = None  # the data is local files

# Flip, then resize to fit img_scale with the aspect kept; boxes under 1 px
# are dropped, images left without boxes are kept.
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
    # Annotations are loaded after Resize: the metric rescales predictions
    # back to the original image and compares there.
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor')),
]

# Batches of 8 with one loader process: sized for a CPU.
train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    pin_memory=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=None,  # plain shuffled batches
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        generate=demo_data,
        ann_file='annotations/train.json',
        data_prefix=dict(img='train/'),
        # Images without shapes are kept: they teach the background.
        filter_cfg=dict(filter_empty_gt=False, min_size=1),
        pipeline=train_pipeline,
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        generate=demo_data,
        ann_file='annotations/val.json',
        data_prefix=dict(img='val/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader

val_evaluator = dict(
    type='FastCocoMetric',
    ann_file=data_root + 'annotations/val.json',
    metric='bbox',
    # maxDets (1, 10, 100): the standard COCO AP.
    proposal_nums=(1, 10, 100),
    format_only=False,
    backend_args=backend_args)
test_evaluator = val_evaluator
