# Fine-tune PSALM YOLO n (P3-P5, 640 px) on your own COCO-format dataset,
# starting from ultralytics YOLOv8n weights (converted) or from a
# checkpoint of ours of the same model (psalm_yolo_n_p3-p5_coco.py, any
# classes).
#
# 1. Convert the weights (once; an ultralytics .pt pickles its model, so
#    ultralytics must be importable and the file trusted):
#
#      python tools/convert_weights.py ultralytics yolov8n.pt \
#          work_dirs/yolov8n_psalm.pth --trust-pickle
#
# 2. Set data_root, the annotation files and `classes` below, then train:
#
#      python tools/train.py \
#          configs/psalm_yolo/psalm_yolo_n_finetune_custom.py \
#          --cfg-options load_from=work_dirs/yolov8n_psalm.pth
#
#    (load_from below already names that file; --cfg-options picks
#    another, e.g. work_dirs/psalm_yolo_n_p3-p5_coco/epoch_300.pth. The
#    converter prints this command.)
#
# No --non-strict: YOLOv8 weights have no PSALM class side (fusion,
# prototype branch, logit scale and bias), and a checkpoint of other
# classes has it in other shapes. ReinitClassHeadHook (custom_hooks below)
# starts exactly those parts afresh, says so in one log line ("load_from
# ...: class head re-initialized (checkpoint 80 classes, model 3): ...")
# and loads everything else strictly: a checkpoint of another size fails
# with the key and both shapes. For yolov8s/m/l/x or P2-P5 weights, the
# converter prints the --cfg-options that fit (e.g.
# model.backbone.widen_factor=0.5 for s).
_base_ = './psalm_yolo_n_p3-p5_coco.py'

# ---- your dataset (COCO format): set these ---------------------------------
data_root = 'data/my_dataset/'  # folder holding the files below
train_ann_file = 'annotations/train.json'  # relative to data_root
train_img_prefix = 'images/train/'  # training images, relative to data_root
val_ann_file = 'annotations/val.json'
val_img_prefix = 'images/val/'
# The annotation files' category names, in their order; the model learns
# exactly these (the files may hold more categories: those are left out).
classes = ('cat', 'dog', 'bird')
num_classes = len(classes)
metainfo = dict(classes=classes)

# ---- the checkpoint to start from ------------------------------------------
# What step 1 writes. Any classes: the class side is re-initialized when
# they differ from `classes`.
load_from = 'work_dirs/yolov8n_psalm.pth'

# ---- fine-tuning knobs -----------------------------------------------------
# Stem and first stage frozen (no gradient, BN statistics fixed): their
# edge and texture filters carry over to any images and barely change in
# fine-tuning, and freezing them saves memory and time. -1 trains all
# (ultralytics' default, for large datasets), 4 the neck and head only
# (mmyolo's choice for a tiny single-class set).
frozen_stages = 1
# 50 epochs: from converged weights the body only adapts and the new class
# side learns in a few epochs (300 from scratch). With close mosaic for
# the last 10, as YOLOv8's fine-tuning does (close_mosaic=10).
max_epochs = 50
close_mosaic_epochs = 10
# SGD lr 0.001 for a total batch of 16: 0.4x the from-scratch rate
# (0.01 at batch 64, i.e. 0.0025 at 16), so the pretrained body moves
# little; the re-initialized class side still learns at it after the
# warm-up. --auto-scale-lr rescales it linearly to another total batch.
base_lr = 0.001
train_batch_size = 16  # per GPU
# Linear warm-up over 100 iterations (1000 from scratch; 100 is YOLOv8's
# minimum): it only has to keep the first gradients of the fresh class side
# from disturbing the pretrained weights.
warmup_iters = 100

# ---- data ------------------------------------------------------------------
# The base's YOLOv8 pipelines at 640 px (mosaic, random affine, HSV, flip;
# letterbox for testing), pointed at the dataset above.
train_dataloader = dict(
    batch_size=train_batch_size,
    num_workers=4,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file=train_ann_file,
        data_prefix=dict(img=train_img_prefix)))
val_dataloader = dict(
    batch_size=8,
    num_workers=2,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file=val_ann_file,
        data_prefix=dict(img=val_img_prefix)))
test_dataloader = val_dataloader
# COCO mAP on the validation annotations (the same file as the loader's).
val_evaluator = dict(ann_file=data_root + val_ann_file)
test_evaluator = val_evaluator

# ---- model -----------------------------------------------------------------
# The base's n-size P3-P5 model (YOLOv8n's layout) with your class count;
# the neck, fusion and head follow the backbone.
model = dict(
    backbone=dict(frozen_stages=frozen_stages),
    fusion=dict(num_classes=num_classes))

# ---- schedule --------------------------------------------------------------
train_cfg = dict(max_epochs=max_epochs, val_interval=1)
# The base's SGD (momentum 0.937, Nesterov, weight decay 5e-4, none on
# norms, biases, logit scale/bias and prototypes; grad clip 10) at base_lr.
optim_wrapper = dict(optimizer=dict(lr=base_lr))
# Warm-up from 1% of base_lr, then linear decay to 1% at the last epoch
# (YOLOv8's lrf=0.01).
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=0.01,
        by_epoch=False,
        begin=0,
        end=warmup_iters),
    dict(
        type='LinearLR',
        start_factor=1.0,
        end_factor=0.01,
        by_epoch=True,
        begin=0,
        end=max_epochs,
        convert_to_iter_based=True),
]
auto_scale_lr = dict(enable=False, base_batch_size=train_batch_size)

# ReinitClassHeadHook first (it edits the loaded checkpoint before EMAHook
# copies it), then the base's EMA (decay 0.9999 ramped in over ~2000
# iterations, as YOLOv8's; evaluated and saved), then the switch to the
# no-mosaic pipeline for the last close_mosaic_epochs.
custom_hooks = [
    dict(type='ReinitClassHeadHook'),
    dict(
        type='EMAHook',
        ema_type='ExpMomentumEMA',
        momentum=0.0001,
        update_buffers=True,
        strict_load=False,
        priority=49),
    dict(
        type='CloseMosaicHook',
        num_last_epochs=close_mosaic_epochs,
        switch_pipeline=_base_.train_pipeline_stage2),
]

# Validate every epoch (a custom validation set is small); keep the best
# (COCO mAP) and the last two checkpoints.
default_hooks = dict(
    checkpoint=dict(interval=1, max_keep_ckpts=2, save_best='auto'),
    logger=dict(interval=20))
