"""The PSALM dual-head YOLO detector."""
from typing import Optional, Tuple

import torch
from mmdet.models.detectors.base import BaseDetector

from engine_plugins.registry import MODELS


@MODELS.register_module()
class PSALMYOLO(BaseDetector):
    """Backbone → PAFPN neck → PSALM fusion → dual head.

    Declares the sanity-engine contract: gt boxes are pixel xyxy in the
    network-input frame, labels in ``[0, num_classes)``.

    Args:
        backbone, neck, fusion, bbox_head: Configs of the parts. The
            backbone's output channels and strides (and depth, for the
            neck) are passed on as defaults, and the fusion's prototype
            count and dimension to the head.
        data_preprocessor: mmdet ``DetDataPreprocessor`` config.

    Example:
        >>> model = MODELS.build(dict(
        ...     type='PSALMYOLO',
        ...     data_preprocessor=dict(type='DetDataPreprocessor',
        ...                            mean=[0, 0, 0], std=[255, 255, 255],
        ...                            bgr_to_rgb=True, pad_size_divisor=32),
        ...     backbone=dict(type='YOLOv8CSPDarknet', out_indices=(2, 3, 4)),
        ...     neck=dict(type='YOLOv8PAFPN'),
        ...     fusion=dict(type='PSALMFusion', num_classes=80,
        ...                 embed_dims=64),
        ...     bbox_head=dict(type='PSALMDualHead')))
    """

    box_format = 'xyxy_pixel'
    #: The terms ``loss`` returns (the sanity engine checks them).
    loss_keys = ('loss_cls', 'loss_bbox', 'loss_dfl')
    #: The class side, for fine-tuning on other classes
    #: (``ReinitClassHeadHook``): the prototypes and the fusion that
    #: refines them, the head's prototype branch (its width is
    #: ``max(C_P3, min(K, 100))``, YOLOv8's class-branch rule) and the
    #: logit scale and bias. Exactly the parts ultralytics YOLOv8 weights
    #: do not provide (``ultralytics_weights.NEW_PREFIXES``).
    class_head_prefixes = ('fusion.', 'bbox_head.proto_branches.',
                           'bbox_head.logit_scale', 'bbox_head.logit_bias')
    #: The entry whose first dimension is the class count ``K``.
    class_count_key = 'fusion.base_prototypes'

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 fusion: dict,
                 bbox_head: dict,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg=None) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        # Widths, depth and strides follow the backbone, so a size variant
        # or a P3-P5 variant changes the backbone only.
        channels = list(self.backbone.out_channels)
        self.neck = MODELS.build(
            neck,
            default_args=dict(
                in_channels=channels,
                deepen_factor=self.backbone.deepen_factor))
        self.fusion = MODELS.build(
            fusion, default_args=dict(in_channels=channels))
        self.bbox_head = MODELS.build(
            bbox_head,
            default_args=dict(
                in_channels=channels,
                strides=self.backbone.strides,
                num_classes=self.fusion.num_classes,
                embed_dims=self.fusion.embed_dims))
        self._check_levels(channels)

    def _check_levels(self, channels) -> None:
        parts = dict(
            neck=list(self.neck.in_channels),
            bbox_head=[
                branch[0].conv.in_channels
                for branch in self.bbox_head.box_branches
            ])
        for name, got in parts.items():
            if got != channels:
                raise ValueError(
                    f'PSALMYOLO: {name}.in_channels={got} does not match the '
                    f'backbone outputs {channels} (out_indices='
                    f'{self.backbone.out_indices}); leave in_channels out '
                    'of the config to follow the backbone')
        if list(self.bbox_head.strides) != self.backbone.strides:
            raise ValueError(
                f'PSALMYOLO: bbox_head.strides={self.bbox_head.strides} do '
                f'not match the backbone strides {self.backbone.strides}')

    @property
    def num_classes(self) -> int:
        return self.fusion.num_classes

    def extract_feat(self, inputs: torch.Tensor):
        feats, prototypes = self.fusion(self.neck(self.backbone(inputs)))
        return feats, prototypes

    def loss(self, inputs: torch.Tensor, data_samples) -> dict:
        return self.bbox_head.loss(*self.extract_feat(inputs), data_samples)

    def predict(self,
                inputs: torch.Tensor,
                data_samples,
                rescale: bool = True):
        results = self.bbox_head.predict(
            *self.extract_feat(inputs), data_samples, rescale=rescale)
        return self.add_pred_to_datasample(data_samples, results)

    def _forward(self,
                 inputs: torch.Tensor,
                 data_samples=None) -> Tuple[list, list]:
        return self.bbox_head(*self.extract_feat(inputs))
