# RT-DETR R50 for 1920x1080 inputs on one 80 GB H100: the aspect ratio is
# kept (Resize to fit 1920x1080) and the batch is padded to a multiple of
# 32 (1920x1088). Batch 16 with fp16 AMP (dynamic loss scale; matching and
# losses run in the criterion's FP32 region), 72 epochs.
#
#   python tools/train.py configs/rtdetr/rtdetr_r50_1920x1080_h100.py
_base_ = './rtdetr_r50_coco.py'

img_scale = (1920, 1080)
backend_args = None

# No zoom-out (Expand): at this resolution it would only shrink objects.
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PhotoMetricDistortion'),
    dict(
        type='RandomApply',
        transforms=[dict(type='MinIoURandomCrop')],
        prob=0.8),
    dict(type='RandomFlip', prob=0.5),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1, 1), keep_empty=False),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor')),
]

train_dataloader = dict(
    batch_size=16, num_workers=16, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=16, num_workers=8, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(
    type='AmpGradSanityOptimWrapper', dtype='float16', loss_scale='dynamic')

env_cfg = dict(cudnn_benchmark=True)
