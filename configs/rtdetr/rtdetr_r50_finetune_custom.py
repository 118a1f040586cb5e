# Fine-tune RT-DETR R50 (640 px) on your own COCO-format dataset, starting
# from the transformers checkpoint PekingU/rtdetr_r50vd (converted) or a
# checkpoint of ours of the same model (any classes).
#
# 1. Convert the weights (once), from a transformers save_pretrained
#    folder, e.g. fetched with
#    `huggingface-cli download PekingU/rtdetr_r50vd --local-dir rtdetr_r50vd`:
#
#      python tools/convert_weights.py hf-rtdetr rtdetr_r50vd \
#          work_dirs/rtdetr_r50vd_hf.pth
#
# 2. Set data_root, the annotation files and `classes` below, then train:
#
#      python tools/train.py configs/rtdetr/rtdetr_r50_finetune_custom.py \
#          --cfg-options load_from=work_dirs/rtdetr_r50vd_hf.pth
#
#    (load_from below already names that file; --cfg-options picks
#    another. The converter prints this command as "fine-tune on your own
#    classes"; the class count is len(classes).)
#
# No --non-strict: a checkpoint of other classes (COCO's 80) has the class
# layers (the encoder's and each decoder layer's score head, the
# denoising label embedding) in other shapes. ReinitClassHeadHook
# (custom_hooks below) starts exactly those afresh, says so in one log line
# ("load_from ...: class head re-initialized (checkpoint 80 classes, model
# 3): ...") and loads everything else strictly: a checkpoint of another
# model fails with the key and both shapes.
#
# The model below is the transformers r50vd layout: ResNet-vd backbone
# (ResNetVd), row-first AIFI position embedding, RGB / 255 input. For a
# checkpoint of our configs/rtdetr/rtdetr_r50_coco.py (torchvision ResNet,
# ImageNet mean/std), add
#   --cfg-options model.backbone.type=ResNet model.encoder.pe_order=wh \
#   "model.data_preprocessor.mean=[123.675,116.28,103.53]" \
#   "model.data_preprocessor.std=[58.395,57.12,57.375]"
_base_ = './rtdetr_r50_coco.py'

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
# What step 1 writes. Any classes: the class layers are re-initialized
# when they differ from `classes`.
load_from = 'work_dirs/rtdetr_r50vd_hf.pth'

# ---- fine-tuning knobs -----------------------------------------------------
# Stem and first stage (res2) frozen, besides every BN (the base's
# norm_eval): low-level filters carry over to any images, and freezing
# them saves memory and time. 0 freezes the stem only (RT-DETR's COCO
# training), -1 nothing.
frozen_stages = 1
# The backbone learns at 0.1x base_lr, as in RT-DETR's own training: it is
# the part that transfers best and overfits first on a small dataset.
backbone_lr_mult = 0.1
# 36 epochs (72 from ImageNet weights): from converged weights only the
# class layers start afresh. lr / 10 for the last 6 epochs settles the
# weights before the last evaluations.
max_epochs = 36
lr_drop_epoch = 30
# AdamW lr 1e-4 (weight decay 1e-4, grad clip 0.1: the base's), RT-DETR's
# rate for a total batch of 16; AdamW tolerates the one-GPU batch of 8
# below at the same rate (--auto-scale-lr would halve it).
base_lr = 1e-4
train_batch_size = 8  # per GPU; lower it if the GPU runs out of memory
# Linear warm-up over 500 iterations (2000 from ImageNet weights): it only
# has to keep the first gradients of the fresh class layers from
# disturbing the pretrained weights.
warmup_iters = 500

# ---- data ------------------------------------------------------------------
# The base's pipelines at 640 px (photometric jitter, zoom-out, IoU crop,
# flip, resize), pointed at the dataset above.
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
# The base's R50 RT-DETR (hybrid encoder, 300 queries, 6 decoder layers,
# 100 denoising queries) in the transformers r50vd layout, with your class
# count. No ImageNet initialization: load_from replaces every weight.
model = dict(
    data_preprocessor=dict(mean=[0.0, 0.0, 0.0], std=[255.0, 255.0, 255.0]),
    backbone=dict(type='ResNetVd', frozen_stages=frozen_stages, init_cfg=None),
    encoder=dict(pe_order='hw'),
    criterion=dict(num_classes=num_classes))

# ---- schedule --------------------------------------------------------------
train_cfg = dict(max_epochs=max_epochs, val_interval=1)
optim_wrapper = dict(
    optimizer=dict(lr=base_lr),
    paramwise_cfg=dict(
        custom_keys=dict(backbone=dict(lr_mult=backbone_lr_mult))))
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=0.001,
        by_epoch=False,
        begin=0,
        end=warmup_iters),
    dict(
        type='MultiStepLR',
        by_epoch=True,
        begin=0,
        end=max_epochs,
        milestones=[lr_drop_epoch],
        gamma=0.1),
]
auto_scale_lr = dict(enable=False, base_batch_size=16)

# ReinitClassHeadHook first (it edits the loaded checkpoint before EMAHook
# copies it), then the base's EMA (decay 0.9999, ramped in over ~2000
# iterations; evaluated and saved).
custom_hooks = [
    dict(type='ReinitClassHeadHook'),
    dict(
        type='EMAHook',
        ema_type='ExpMomentumEMA',
        momentum=0.0001,
        gamma=2000,
        update_buffers=True,
        strict_load=False,
        priority=49),
]

# Validate every epoch (a custom validation set is small); keep the best
# (COCO mAP) and the last two checkpoints.
default_hooks = dict(
    checkpoint=dict(interval=1, max_keep_ckpts=2, save_best='auto'),
    logger=dict(interval=20))
