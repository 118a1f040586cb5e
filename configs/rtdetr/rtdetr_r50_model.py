# RT-DETR R50 without data: ResNet-50 (ImageNet weights from torchvision;
# the paper's ResNet-vd is type='ResNetV1d', whose ImageNet weights are not
# in torchvision), hybrid encoder (AIFI on S5, CCFM), 300 selected queries,
# 6 decoder layers with 100 denoising queries, Hungarian-matched VFL / L1 /
# GIoU losses; AdamW 1e-4 (backbone 1e-5), weight decay 1e-4 (none on norms
# and embeddings), grad clip 0.1, EMA 0.9999, 72 epochs. Not run on its
# own: a config adds a dataset base and the pipelines,
#
#   _base_ = ['./rtdetr_r50_model.py', '../_base_/datasets/coco_detection.py']
#
# as rtdetr_r50_coco.py (COCO) and rtdetr_r18_shapes_cpu.py (demo shapes)
# do.
_base_ = ['../_base_/default_runtime.py']

num_classes = 80  # the dataset's class count (COCO's 80)

# ---- model -----------------------------------------------------------------
model = dict(
    type='RTDETR',
    # Converts gt boxes once to cxcywh normalized by the padded batch.
    data_preprocessor=dict(
        type='RTDETRDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32),
    # Stages 2-4 (strides 8, 16, 32); stem frozen, BN statistics and
    # affine frozen, as for ImageNet-pretrained DETR backbones.
    backbone=dict(
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(1, 2, 3),
        frozen_stages=0,
        norm_cfg=dict(type='BN', requires_grad=False),
        norm_eval=True,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    # in_channels follow the backbone.
    encoder=dict(
        type='HybridEncoder',
        hidden_dim=256,
        num_heads=8,
        ffn_dim=1024,
        num_csp_blocks=3,
        expansion=1.0),
    # in_channels and num_classes follow the encoder and the criterion.
    decoder=dict(
        type='RTDETRDecoder',
        embed_dims=256,
        num_queries=300,
        num_layers=6,
        eval_idx=-1,
        num_heads=8,
        num_points=4,
        ffn_channels=1024,
        denoising=dict(
            num_denoising=100, label_noise_ratio=0.5, box_noise_scale=1.0)),
    criterion=dict(
        type='RTDETRCriterion',
        num_classes=num_classes,
        matcher=dict(
            type='BatchedHungarianMatcher',
            match_costs=[
                dict(type='FocalLossCost', weight=2.0, alpha=0.25, gamma=2.0),
                dict(type='BBoxL1Cost', weight=5.0, box_format='xywh'),
                dict(type='IoUCost', iou_mode='giou', weight=2.0),
            ]),
        loss_cls=dict(
            type='RTDETRVarifocalLoss', alpha=0.75, gamma=2.0,
            loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=5.0),
        loss_iou=dict(type='GIoULoss', loss_weight=2.0)),
    # Top-k over all (query, class) scores; no NMS.
    test_cfg=dict(max_per_img=300))

# ---- schedule --------------------------------------------------------------
max_epochs = 72
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

base_lr = 1e-4
# No weight decay on norms (norm_decay_mult) or the denoising label
# embedding; the backbone learns at 0.1x.
optim_wrapper = dict(
    type='GradSanityOptimWrapper',
    optimizer=dict(type='AdamW', lr=base_lr, weight_decay=1e-4),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        custom_keys=dict(
            backbone=dict(lr_mult=0.1), label_embedding=dict(decay_mult=0.0))),
    clip_grad=dict(max_norm=0.1, norm_type=2))
# Linear warm-up over 2000 iterations, then constant.
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=2000)
]
# The lr above is for a total batch of 16; `tools/train.py --auto-scale-lr`
# rescales it linearly to the actual total batch.
auto_scale_lr = dict(enable=False, base_batch_size=16)

# EMA with decay 0.9999 (momentum 1e-4), ramped in over ~2000 iterations.
custom_hooks = [
    dict(
        type='EMAHook',
        ema_type='ExpMomentumEMA',
        momentum=0.0001,
        gamma=2000,
        update_buffers=True,
        strict_load=False,
        priority=49),
]

# Detection runs draw predictions with mmdet's visualizer; `tools/test.py
# --show-dir DIR` switches drawing on.
default_hooks = dict(
    checkpoint=dict(interval=1, max_keep_ckpts=3, save_best='auto'),
    logger=dict(interval=50),
    visualization=dict(type='DetVisualizationHook'))
visualizer = dict(
    type='DetLocalVisualizer',
    vis_backends=[
        dict(type='LocalVisBackend'),
        dict(type='TensorboardVisBackend')
    ])
