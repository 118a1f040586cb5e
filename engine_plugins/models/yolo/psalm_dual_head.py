"""The PSALM dual head: a DFL box branch and a prototype-similarity class
branch per level, with YOLOv8's assignment, losses and decoding."""
import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.ops import batched_nms
from mmdet.models.utils import filter_scores_and_topk
from mmdet.structures.bbox import get_box_tensor
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch.nn.utils.rnn import pad_sequence

from engine_plugins.registry import MODELS
from engine_plugins.structures.box_frames import boxes_to_original_image
from engine_plugins.task_modules import DFLBoxCoder, make_anchor_points
from .layers import conv


def _flatten(maps: Sequence[torch.Tensor]) -> torch.Tensor:
    """Per-level ``(B, C, H, W)`` → ``(B, sum H*W, C)``, level by level."""
    return torch.cat([m.flatten(2) for m in maps], 2).transpose(1, 2)


@MODELS.register_module()
class PSALMDualHead(BaseModule):
    """Per level, a box branch with ``4 * reg_max`` outputs (side-major)
    and a prototype branch with a ``D``-dim embedding per anchor.

    Class logits are ``exp(logit_scale) * cos(embedding, prototype_k) +
    bias_level``; the bias starts at YOLOv8's prior
    ``log(5 / K / (640 / stride)^2)`` and the box output bias at 1.0.

    Training output (:meth:`forward`): the raw per-level maps. Inference
    (:meth:`predict`): DFL expectation → distances → pixel xyxy, sigmoid
    scores, ``score_thr`` and ``nms_pre`` (mmdet's
    ``filter_scores_and_topk``), class-aware batched NMS (mmcv) and
    ``max_per_img``, rescaled to the original image.

    With ``multi_label=True`` (the default, YOLOv8's evaluation protocol)
    every class of an anchor scoring above ``score_thr`` is a candidate, so
    one box may be reported under several classes; with ``False`` only the
    anchor's top class is (fewer, cleaner detections for deployment, and a
    lower COCO AP: see the README).

    Args:
        in_channels: Channels of each level.
        strides: Stride of each level.
        embed_dims: Prototype dimension ``D``.
        num_classes: ``K`` (for the bias prior).
        reg_max: DFL bins per side. Defaults to 16.
        loss: Loss config (``YOLOv8DetLoss``).
        test_cfg: ``score_thr`` (0.001), ``nms`` (mmcv ``nms_cfg``; IoU
            0.7), ``nms_pre`` (30000 candidates per image before NMS),
            ``max_per_img`` (300), ``multi_label`` (True).

    Example:
        >>> head = MODELS.build(dict(
        ...     type='PSALMDualHead', in_channels=[64, 128, 256],
        ...     strides=[8, 16, 32], embed_dims=64, num_classes=80))
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 strides: Sequence[int],
                 embed_dims: int,
                 num_classes: int,
                 reg_max: int = 16,
                 loss: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(in_channels) != len(strides):
            raise ValueError('PSALMDualHead: in_channels and strides differ '
                             f'in length ({len(in_channels)} vs '
                             f'{len(strides)})')
        self.strides = list(strides)
        self.num_classes = num_classes
        self.coder = DFLBoxCoder(reg_max=reg_max)
        box_mid = max(16, in_channels[0] // 4, reg_max * 4)
        cls_mid = max(in_channels[0], min(num_classes, 100))
        self.box_branches = nn.ModuleList(
            nn.Sequential(
                conv(c, box_mid, 3), conv(box_mid, box_mid, 3),
                nn.Conv2d(box_mid, 4 * reg_max, 1)) for c in in_channels)
        self.proto_branches = nn.ModuleList(
            nn.Sequential(
                conv(c, cls_mid, 3), conv(cls_mid, cls_mid, 3),
                nn.Conv2d(cls_mid, embed_dims, 1)) for c in in_channels)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(10.0)))
        self.logit_bias = nn.Parameter(
            torch.tensor([
                math.log(5 / num_classes / (640 / s)**2) for s in strides
            ]))
        self.loss_module = MODELS.build(
            loss or dict(type='YOLOv8DetLoss'),
            default_args=dict(num_classes=num_classes, reg_max=reg_max))
        self.test_cfg = dict(
            score_thr=0.001,
            nms=dict(type='nms', iou_threshold=0.7),
            nms_pre=30000,
            max_per_img=300,
            multi_label=True)
        self.test_cfg.update(test_cfg or {})

    def init_weights(self) -> None:
        super().init_weights()
        for branch in self.box_branches:
            nn.init.constant_(branch[-1].bias, 1.0)

    def forward(
        self, feats: Sequence[torch.Tensor], prototypes: torch.Tensor
    ) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        """Per-level ``(B, K, H, W)`` class logits and ``(B, 4 * reg_max,
        H, W)`` box distributions."""
        unit = F.normalize(prototypes, dim=-1)
        cls_maps, box_maps = [], []
        for i, x in enumerate(feats):
            emb = F.normalize(self.proto_branches[i](x), dim=1)
            cos = torch.einsum('bdhw,bkd->bkhw', emb, unit)
            cls_maps.append(self.logit_scale.exp() * cos +
                            self.logit_bias[i])
            box_maps.append(self.box_branches[i](x))
        return cls_maps, box_maps

    def _anchors(self, maps: Sequence[torch.Tensor]):
        return make_anchor_points([m.shape[-2:] for m in maps], self.strides,
                                  maps[0].device)

    def decode_boxes(self, box_maps: Sequence[torch.Tensor]) -> torch.Tensor:
        """Per-level ``(B, 4 * reg_max, H, W)`` box distributions →
        ``(B, A, 4)`` xyxy boxes in network-input pixels, level by level,
        row-major within a level (the order of :meth:`predict`'s
        candidates)."""
        points, strides = self._anchors(box_maps)
        return self.coder.decode(points, _flatten(box_maps)) * strides

    def loss(self, feats, prototypes, data_samples) -> Dict[str, torch.Tensor]:
        cls_maps, box_maps = self(feats, prototypes)
        points, strides = self._anchors(cls_maps)
        gts = [s.gt_instances for s in data_samples]
        device = points.device
        # Pad to (B, M, 4) in one call; M >= 1 keeps shapes non-empty.
        gt_bboxes = pad_sequence(
            [get_box_tensor(g.bboxes).float() for g in gts] +
            [torch.zeros(1, 4, device=device)],
            batch_first=True)[:-1]
        gt_labels = pad_sequence(
            [g.labels.long() for g in gts] +
            [torch.zeros(1, dtype=torch.long, device=device)],
            batch_first=True)[:-1]
        counts = torch.tensor([len(g) for g in gts], device=device)
        pad_mask = torch.arange(
            gt_bboxes.shape[1], device=device) < counts[:, None]
        return self.loss_module(
            _flatten(cls_maps), _flatten(box_maps), points, strides,
            gt_labels, gt_bboxes, pad_mask)

    @torch.no_grad()
    def predict(self, feats, prototypes, data_samples,
                rescale: bool = True) -> List[InstanceData]:
        cls_maps, box_maps = self(feats, prototypes)
        bboxes = self.decode_boxes(box_maps)
        scores = _flatten(cls_maps).sigmoid()
        cfg = self.test_cfg
        results = []
        for b, sample in enumerate(data_samples):
            if cfg['multi_label']:
                # every (anchor, class) above the threshold is a candidate
                score, label, _, boxes = filter_scores_and_topk(
                    scores[b], cfg['score_thr'], cfg['nms_pre'], bboxes[b])
            else:
                top, label = scores[b].max(-1, keepdim=True)
                score, _, _, (boxes, label) = filter_scores_and_topk(
                    top, cfg['score_thr'], cfg['nms_pre'],
                    [bboxes[b], label[:, 0]])
            if len(score) == 0:
                # mmcv's batched_nms fails on empty input (boxes.max()).
                results.append(
                    InstanceData(bboxes=boxes, scores=score, labels=label))
                continue
            dets, kept = batched_nms(boxes, score, label, cfg['nms'])
            dets, kept = dets[:cfg['max_per_img']], kept[:cfg['max_per_img']]
            boxes = dets[:, :4]
            if rescale:
                boxes = boxes_to_original_image(boxes, sample.metainfo)
            results.append(
                InstanceData(bboxes=boxes, scores=dets[:, 4],
                             labels=label[kept]))
        return results
