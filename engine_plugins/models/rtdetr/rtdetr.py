"""The RT-DETR detector."""
from typing import List, Optional, Sequence

import torch
from mmdet.models.detectors.base import BaseDetector
from mmdet.structures.bbox import get_box_tensor
from mmengine.structures import InstanceData

from engine_plugins.registry import MODELS
from engine_plugins.structures import PackedTargets
from engine_plugins.structures.box_frames import (
    boxes_to_original_image, normalized_cxcywh_to_pixel_xyxy)
from .rtdetr_data_preprocessor import RTDETRDataPreprocessor


def resnet_out_channels(backbone) -> List[int]:
    """Channels of an mmdet ``ResNet``'s selected stages (mmdet does not
    record them)."""
    expansion = backbone.block.expansion
    return [
        backbone.base_channels * 2**i * expansion
        for i in backbone.out_indices
    ]


@MODELS.register_module()
class RTDETR(BaseDetector):
    """Backbone → hybrid encoder → query-selection decoder, trained with
    the Hungarian-matched criterion; NMS-free inference.

    The box contract is one conversion in one place: the data preprocessor
    must be an ``RTDETRDataPreprocessor`` (it turns the gt boxes into
    cxcywh normalized by the padded batch); the criterion checks the range;
    inference maps boxes back to pixel xyxy of the input, then of the
    original image. ``box_format`` tells the preflight hook the same.

    Args:
        backbone: mmdet ``ResNet`` / ``ResNetV1d`` config with three
            ``out_indices`` (S3, S4, S5).
        encoder: ``HybridEncoder`` config; ``in_channels`` defaults to the
            backbone's.
        decoder: ``RTDETRDecoder`` config; ``in_channels`` defaults to the
            encoder's and ``num_classes`` to the criterion's.
        criterion: ``RTDETRCriterion`` config.
        test_cfg: ``max_per_img`` (300): detections kept per image, top-k
            over all (query, class) scores.
        data_preprocessor: ``RTDETRDataPreprocessor`` config.

    Example:
        >>> model = MODELS.build(dict(
        ...     type='RTDETR',
        ...     data_preprocessor=dict(
        ...         type='RTDETRDataPreprocessor', mean=[0, 0, 0],
        ...         std=[255, 255, 255], bgr_to_rgb=True,
        ...         pad_size_divisor=32),
        ...     backbone=dict(type='ResNet', depth=18, out_indices=(1, 2, 3)),
        ...     encoder=dict(type='HybridEncoder', expansion=0.5),
        ...     decoder=dict(type='RTDETRDecoder', num_layers=3),
        ...     criterion=dict(type='RTDETRCriterion', num_classes=80,
        ...                    matcher=dict(type='BatchedHungarianMatcher',
        ...                                 match_costs=[...]))))
    """

    box_format = 'cxcywh_normalized'
    #: Every entry whose shape depends on the class count, for fine-tuning
    #: on other classes (``ReinitClassHeadHook``): the encoder's score head
    #: (query selection), each decoder layer's score head and the
    #: denoising label embedding (``K + 1`` rows).
    class_head_prefixes = ('decoder.query_selection.score_head.',
                           'decoder.score_heads.',
                           'decoder.denoising.label_embedding.')
    #: The entry whose first dimension is the class count ``K``.
    class_count_key = 'decoder.query_selection.score_head.bias'

    def __init__(self,
                 backbone: dict,
                 encoder: dict,
                 decoder: dict,
                 criterion: dict,
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg=None) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if not isinstance(self.data_preprocessor, RTDETRDataPreprocessor):
            raise TypeError(
                'RTDETR: data_preprocessor must be RTDETRDataPreprocessor '
                '(it converts gt boxes to normalized cxcywh once), got '
                f'{type(self.data_preprocessor).__name__}')
        self.backbone = MODELS.build(backbone)
        self.encoder = MODELS.build(
            encoder,
            default_args=dict(
                in_channels=resnet_out_channels(self.backbone)))
        self.criterion = MODELS.build(criterion)
        self.decoder = MODELS.build(
            decoder,
            default_args=dict(
                in_channels=[self.encoder.out_channels] *
                self.encoder.num_levels,
                num_classes=self.criterion.num_classes))
        if self.decoder.num_classes != self.criterion.num_classes:
            raise ValueError(
                f'RTDETR: decoder.num_classes={self.decoder.num_classes} '
                f'but criterion.num_classes={self.criterion.num_classes}; '
                'set it on the criterion only')
        self.test_cfg = {'max_per_img': 300, **(test_cfg or {})}

    @property
    def num_classes(self) -> int:
        return self.criterion.num_classes

    @property
    def loss_keys(self) -> List[str]:
        """The terms every training step returns (the denoising terms are
        left out: a batch without gt boxes has none)."""
        terms = ('loss_vfl', 'loss_bbox', 'loss_giou')
        prefixes = [f'd{i}.' for i in range(self.decoder.num_layers - 1)]
        return [p + t for p in prefixes + ['', 'enc_'] for t in terms]

    def extract_feat(self, inputs: torch.Tensor) -> Sequence[torch.Tensor]:
        return self.encoder(self.backbone(inputs))

    def loss(self, inputs: torch.Tensor, data_samples) -> dict:
        # Packed once per step: denoising, the 7 matchings and the losses
        # share the padded and flat forms (PackedTargets.of).
        targets = PackedTargets.pack(
            [s.gt_instances.labels for s in data_samples],
            [get_box_tensor(s.gt_instances.bboxes) for s in data_samples])
        names = [s.metainfo.get('img_path', '') for s in data_samples]
        outputs = self.decoder(
            self.extract_feat(inputs), targets.labels, targets.boxes)
        return self.criterion(
            outputs, targets.labels, targets.boxes, names=names)

    def predict(self,
                inputs: torch.Tensor,
                data_samples,
                rescale: bool = True):
        outputs = self.decoder(self.extract_feat(inputs))
        results = self.decode(outputs.logits[-1], outputs.boxes[-1],
                              tuple(inputs.shape[-2:]), data_samples,
                              rescale)
        return self.add_pred_to_datasample(data_samples, results)

    def decode(self, logits: torch.Tensor, boxes: torch.Tensor, hw,
               data_samples, rescale: bool) -> List[InstanceData]:
        """Top-k (query, class) pairs by sigmoid score → pixel xyxy in the
        ``hw`` input frame, or in the original image if ``rescale``."""
        num_classes = logits.shape[-1]
        k = min(self.test_cfg['max_per_img'], logits[0].numel())
        scores, index = logits.sigmoid().flatten(1).topk(k, dim=1)
        query = torch.div(index, num_classes, rounding_mode='floor')
        picked = boxes.gather(1, query[..., None].expand(-1, -1, 4))
        results = []
        for b, sample in enumerate(data_samples):
            pixel = normalized_cxcywh_to_pixel_xyxy(picked[b].float(), hw)
            if rescale:
                pixel = boxes_to_original_image(pixel, sample.metainfo)
            results.append(
                InstanceData(
                    bboxes=pixel,
                    scores=scores[b].float(),
                    labels=index[b] % num_classes))
        return results

    def _forward(self, inputs: torch.Tensor, data_samples=None):
        outputs = self.decoder(self.extract_feat(inputs))
        return outputs.logits[-1], outputs.boxes[-1]
