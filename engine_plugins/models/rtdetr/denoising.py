"""Contrastive denoising queries for RT-DETR training."""
from typing import List, NamedTuple, Optional, Sequence

import torch
from mmdet.models.layers.transformer.utils import inverse_sigmoid
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy, bbox_xyxy_to_cxcywh
from torch import nn

from engine_plugins.structures import PackedTargets


class DenoisingGroups(NamedTuple):
    """Denoising queries of one batch and how to score them.

    Layout along the query axis: ``num_groups`` groups of ``2 * max_gts``
    queries; in each group the first ``max_gts`` are positives (noised gt
    ``k`` of the image at slot ``k``) and the next ``max_gts`` negatives
    (noised further, to be predicted as background). Slots past an image's
    own gt count are padding and also background.

    Attributes:
        label_queries: ``(B, N_dn, C)`` embeddings of the noised labels.
        ref_boxes_unact: ``(B, N_dn, 4)`` noised boxes, inverse-sigmoid
            of normalized cxcywh.
        attn_mask: ``(N_dn + Q, N_dn + Q)`` bool, True where a query (row)
            must not attend to a key (column).
        positive_idx: Per image, the query index of each positive, group
            by group, so that entry ``g * n + k`` is gt ``k`` in group
            ``g``.
        num_groups: Number of groups.
    """
    label_queries: torch.Tensor
    ref_boxes_unact: torch.Tensor
    attn_mask: torch.Tensor
    positive_idx: List[torch.Tensor]
    num_groups: int


class DenoisingQueryGenerator(nn.Module):
    """Builds noised copies of the gt boxes as extra decoder queries.

    Each gt appears once per group as a positive (label flipped with
    probability ``label_noise_ratio / 2``; each box edge moved by up to
    ``box_noise_scale`` x half the box size) and once as a negative (moved
    by between 1 and 2 times that). The group count is
    ``num_denoising // max_gts`` (at least 1). Matching queries cannot see
    denoising queries, and groups cannot see each other, so the gt
    information does not leak.

    mmdet's ``CdnQueryGenerator`` (DINO) reads pixel xyxy boxes from data
    samples and normalizes them by ``img_shape``; RT-DETR's boxes are
    already normalized by the padded batch (converted once, by
    ``RTDETRDataPreprocessor``), so this generator takes them as they are.

    Args:
        num_classes: Number of classes; index ``num_classes`` of the label
            embedding is the (zero, untrained) padding row.
        embed_dims: Query width.
        num_denoising: Target number of denoising queries (100); 0 turns
            denoising off.
        label_noise_ratio: Twice the probability of flipping a label.
        box_noise_scale: Box noise, in units of half the box size.
    """

    def __init__(self,
                 num_classes: int,
                 embed_dims: int,
                 num_denoising: int = 100,
                 label_noise_ratio: float = 0.5,
                 box_noise_scale: float = 1.0) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.num_denoising = num_denoising
        self.label_noise_ratio = label_noise_ratio
        self.box_noise_scale = box_noise_scale
        self.label_embedding = nn.Embedding(
            num_classes + 1, embed_dims, padding_idx=num_classes)

    def forward(self, gt_labels: Sequence[torch.Tensor],
                gt_boxes: Sequence[torch.Tensor],
                num_queries: int) -> Optional[DenoisingGroups]:
        """Denoising queries for a batch, or None when there is no gt (or
        denoising is off).

        Args:
            gt_labels: Per image ``(n_i,)``.
            gt_boxes: Per image ``(n_i, 4)`` normalized cxcywh.
            num_queries: Number of matching queries that follow.
        """
        counts = [len(labels) for labels in gt_labels]
        max_gts = max(counts, default=0)
        if self.num_denoising <= 0 or max_gts == 0:
            return None
        num_groups = max(self.num_denoising // max_gts, 1)
        device = gt_boxes[0].device
        targets = PackedTargets.of(gt_labels, gt_boxes)
        real = targets.valid
        labels = targets.padded_labels.masked_fill(~real, self.num_classes)
        boxes = targets.padded_boxes.float()
        reps = 2 * num_groups
        labels, real = labels.repeat(1, reps), real.repeat(1, reps)
        boxes = boxes.repeat(1, reps, 1)
        num_dn = labels.shape[1]
        negative = (torch.arange(num_dn, device=device) % (2 * max_gts)) \
            >= max_gts

        if self.training and self.label_noise_ratio > 0:
            flip = (torch.rand_like(boxes[..., 0]) <
                    self.label_noise_ratio * 0.5) & real
            random = torch.randint_like(labels, 0, self.num_classes)
            labels = torch.where(flip, random, labels)
        if self.training and self.box_noise_scale > 0:
            xyxy = bbox_cxcywh_to_xyxy(boxes)
            half_wh = boxes[..., 2:].repeat(1, 1, 2) * 0.5
            sign = torch.randint_like(boxes, 0, 2) * 2.0 - 1.0
            size = torch.rand_like(boxes) + negative[None, :, None].float()
            xyxy = xyxy + sign * size * half_wh * self.box_noise_scale
            boxes = bbox_xyxy_to_cxcywh(xyxy.clamp(0.0, 1.0))

        # Positive k of group g sits at g * 2 * max_gts + k: built from the
        # host-side counts, with no nonzero() sync per image.
        group_start = torch.arange(num_groups, device=device) * 2 * max_gts
        positive_idx = [(group_start[:, None] +
                         torch.arange(n, device=device)).flatten()
                        for n in counts]
        return DenoisingGroups(
            label_queries=self.label_embedding(labels),
            ref_boxes_unact=inverse_sigmoid(boxes),
            attn_mask=self.attention_mask(num_groups, 2 * max_gts,
                                          num_queries, device),
            positive_idx=positive_idx,
            num_groups=num_groups)

    @staticmethod
    def attention_mask(num_groups: int, group_size: int, num_queries: int,
                       device: torch.device) -> torch.Tensor:
        """``(N_dn + Q, N_dn + Q)`` bool mask, True = blocked: matching
        queries see no denoising query; a group sees only itself and the
        matching queries."""
        num_dn = num_groups * group_size
        group = torch.arange(num_dn, device=device) // group_size
        mask = torch.zeros(
            num_dn + num_queries,
            num_dn + num_queries,
            dtype=torch.bool,
            device=device)
        mask[:num_dn, :num_dn] = group[:, None] != group[None, :]
        mask[num_dn:, :num_dn] = True
        return mask
