# RT-DETR R18 on COCO 2017: the R50 recipe with ResNet-18 (trained fully:
# BN and all stages, at the backbone's 0.1x lr), a half-width CCFM and 3
# decoder layers.
_base_ = './rtdetr_r50_coco.py'

model = dict(
    backbone=dict(
        depth=18,
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet18')),
    encoder=dict(expansion=0.5),
    decoder=dict(num_layers=3))
