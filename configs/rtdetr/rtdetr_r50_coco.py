# RT-DETR R50 on COCO 2017 at 640 px: ResNet-50 (ImageNet weights from
# torchvision; the paper's ResNet-vd is type='ResNetV1d', whose ImageNet
# weights are not in torchvision), hybrid encoder (AIFI on S5, CCFM), 300
# selected queries, 6 decoder layers with 100 denoising queries,
# Hungarian-matched VFL / L1 / GIoU losses. AdamW 1e-4 (backbone 1e-5),
# weight decay 1e-4 (none on norms and embeddings), grad clip 0.1, EMA
# 0.9999, 72 epochs, total batch 16. The model and schedule are in
# rtdetr_r50_model.py.
_base_ = ['./rtdetr_r50_model.py', '../_base_/datasets/coco_detection.py']

# ---- data ------------------------------------------------------------------
# COCO 2017 through the dataset base (CocoDataset, FastCocoMetric with the
# standard maxDets); this file sets the pipelines and batch sizes.
img_scale = (640, 640)  # (w, h) network input
backend_args = None

# Photometric jitter, zoom-out, IoU crop and flip, then a plain resize to
# img_scale. Boxes stay pixel xyxy here; RTDETRDataPreprocessor converts
# them once, after padding.
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PhotoMetricDistortion'),
    dict(
        type='Expand',
        mean=[123.675, 116.28, 103.53],
        to_rgb=True,
        ratio_range=(1, 4),
        prob=0.5),
    dict(
        type='RandomApply',
        transforms=[dict(type='MinIoURandomCrop')],
        prob=0.8),
    dict(type='RandomFlip', prob=0.5),
    dict(type='Resize', scale=img_scale, keep_ratio=False),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1, 1), keep_empty=False),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=img_scale, keep_ratio=False),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor')),
]

# Images without boxes are kept: they teach the background. Batches group
# landscape and portrait images (the base's AspectRatioBatchSampler).
train_dataloader = dict(
    batch_size=4,
    num_workers=4,
    pin_memory=True,
    dataset=dict(
        filter_cfg=dict(filter_empty_gt=False, min_size=1),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8, num_workers=4, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
