# PSALM YOLO (s size, P2-P5) on COCO 2017 at 640 px for one 80 GB H100:
# batch 64 with fp16 AMP (dynamic loss scale; the loss and the assigner run
# in an FP32 region), SGD lr 0.01 momentum 0.937 wd 5e-4, warm-up, 500
# epochs with mosaic closed for the last 10, EMA, grad clip 10.
#
#   python tools/train.py configs/psalm_yolo_h100.py
_base_ = './psalm_yolo/psalm_yolo_s_coco.py'

max_epochs = 500
close_mosaic_epochs = 10

train_dataloader = dict(batch_size=64, num_workers=16)
val_dataloader = dict(batch_size=32, num_workers=8)
test_dataloader = val_dataloader

train_cfg = dict(max_epochs=max_epochs, val_interval=10)

# The inherited lr decay ends at the inherited max_epochs: restate it.
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

optim_wrapper = dict(
    type='AmpGradSanityOptimWrapper',
    dtype='float16',
    loss_scale='dynamic')

env_cfg = dict(cudnn_benchmark=True)
