# PSALM dual-head YOLO without data: YOLOv8 CSPDarknet (n size), PAFPN with
# P2-P5 (strides 4-32), PSALM fusion, dual head with DFL boxes and
# prototype-similarity classes; SGD for 300 epochs with warm-up, linear
# decay, grad clip and EMA. Not run on its own: a config adds a dataset
# base and the YOLO pipelines,
#
#   _base_ = ['./psalm_yolo_model.py', '../_base_/datasets/coco_detection.py']
#
# as psalm_yolo_base.py (COCO) and psalm_yolo_n_shapes_cpu.py (demo shapes)
# do. Size variants (n, s) and the P3-P5 variant change only the backbone:
# the neck, fusion and head follow its channels and strides.
_base_ = ['../_base_/default_runtime.py']

num_classes = 80  # the dataset's class count (COCO's 80)

# ---- model -----------------------------------------------------------------
model = dict(
    type='PSALMYOLO',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[0.0, 0.0, 0.0],
        std=[255.0, 255.0, 255.0],
        bgr_to_rgb=True,
        pad_size_divisor=32),
    # deepen/widen/max_channels: n (0.33, 0.25, 1024), s (0.33, 0.5, 1024),
    # m (0.67, 0.75, 768), l (1.0, 1.0, 512), x (1.0, 1.25, 512).
    # out_indices 1..4 are strides 4, 8, 16, 32: (1, 2, 3, 4) is P2-P5.
    backbone=dict(
        type='YOLOv8CSPDarknet',
        deepen_factor=0.33,
        widen_factor=0.25,
        max_channels=1024,
        out_indices=(1, 2, 3, 4)),
    neck=dict(type='YOLOv8PAFPN'),
    # Learnable prototypes; set prototypes_file='protos.pth' (a (K, D)
    # tensor, e.g. class-name embeddings) to load frozen ones instead.
    fusion=dict(
        type='PSALMFusion',
        num_classes=num_classes,
        embed_dims=64,
        num_heads=4,
        pool_size=3),
    bbox_head=dict(
        type='PSALMDualHead',
        reg_max=16,
        loss=dict(
            type='YOLOv8DetLoss',
            # YOLOv8's assigner settings: topk 10, alpha 0.5, beta 6.
            assigner=dict(
                type='YOLOv8TaskAlignedAssigner', topk=10, alpha=0.5,
                beta=6.0),
            box_weight=7.5,
            cls_weight=0.5,
            dfl_weight=1.5),
        # multi_label=True scores every class above score_thr (YOLOv8's
        # evaluation protocol, the higher COCO AP); False keeps each
        # anchor's top class only (fewer boxes, for deployment).
        test_cfg=dict(
            score_thr=0.001,
            nms=dict(type='nms', iou_threshold=0.7),
            nms_pre=30000,
            max_per_img=300,
            multi_label=True)))

# ---- schedule --------------------------------------------------------------
max_epochs = 300
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

base_lr = 0.01
# SGD with Nesterov momentum; no weight decay on norms, biases, the logit
# scale/bias or the prototypes.
optim_wrapper = dict(
    type='GradSanityOptimWrapper',
    optimizer=dict(
        type='SGD',
        lr=base_lr,
        momentum=0.937,
        weight_decay=5e-4,
        nesterov=True),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys=dict(
            logit_=dict(decay_mult=0.0),
            base_prototypes=dict(decay_mult=0.0))),
    clip_grad=dict(max_norm=10.0))
# Warm-up over the first 1000 iterations, then a linear decay to 1% of
# base_lr at the last epoch.
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
        end=1000),
    dict(
        type='LinearLR',
        start_factor=1.0,
        end_factor=0.01,
        by_epoch=True,
        begin=0,
        end=max_epochs,
        convert_to_iter_based=True),
]
# The lr above is for a total batch of 64; `tools/train.py --auto-scale-lr`
# rescales it linearly to the actual total batch.
auto_scale_lr = dict(enable=False, base_batch_size=64)

# EMA of the weights (mmdet's ExpMomentumEMA: the momentum starts high and
# decays to `momentum`), evaluated and saved alongside the raw weights. The
# configs with pipelines append the close-mosaic switch.
custom_hooks = [
    dict(
        type='EMAHook',
        ema_type='ExpMomentumEMA',
        momentum=0.0001,
        update_buffers=True,
        strict_load=False,
        priority=49),
]

default_hooks = dict(
    checkpoint=dict(interval=10, max_keep_ckpts=3, save_best='auto'),
    logger=dict(interval=50),
    visualization=dict(type='DetVisualizationHook'))
visualizer = dict(
    type='DetLocalVisualizer',
    vis_backends=[
        dict(type='LocalVisBackend'),
        dict(type='TensorboardVisBackend')
    ])
