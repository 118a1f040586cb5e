"""A batch's ground truths packed once per training step.

RT-DETR reads the same gts in its denoising queries, in 7 Hungarian
matchings (6 decoder layers and the encoder) and in the losses of each.
Each used to pad the per-image lists and convert cxcywh to xyxy itself (8
paddings and about 20 conversions per step). :meth:`PackedTargets.pack`
does both once; the per-image lists it hands out (``labels``, ``boxes``)
carry the pack, and :meth:`PackedTargets.of` returns it for them, so code
that takes the plain lists (and subclasses that pass them on) keeps working
and shares the one pack.
"""
from dataclasses import dataclass
from typing import List, Sequence

import torch
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy
from torch.nn.utils.rnn import pad_sequence


class PackedList(list):
    """A per-image list of tensors that knows the pack it belongs to."""

    pack: 'PackedTargets'


@dataclass
class PackedTargets:
    """Per-image gts and their padded and flat forms, built once.

    Attributes:
        labels: ``B`` tensors ``(n_i,)``, long.
        boxes: ``B`` tensors ``(n_i, 4)``, normalized cxcywh (float32, or
            float64 when given so).
        counts: ``n_i`` per image (host ints).
        padded_labels: ``(B, N)`` long, 0 in padded slots, ``N = max n_i``.
        padded_boxes: ``(B, N, 4)`` cxcywh, zeros in padded slots.
        padded_xyxy: ``(B, N, 4)`` the same boxes as xyxy.
        valid: ``(B, N)`` True for real slots.
        flat_labels: ``(sum n_i,)``; flat_boxes, flat_xyxy: ``(sum n_i,
            4)``; image ``b``'s gt ``j`` is row ``offsets[b] + j``.
        offsets: Host ints.
    """
    labels: PackedList
    boxes: PackedList
    counts: List[int]
    padded_labels: torch.Tensor
    padded_boxes: torch.Tensor
    padded_xyxy: torch.Tensor
    valid: torch.Tensor
    flat_labels: torch.Tensor
    flat_boxes: torch.Tensor
    flat_xyxy: torch.Tensor
    offsets: List[int]

    @classmethod
    def pack(cls, gt_labels: Sequence[torch.Tensor],
             gt_boxes: Sequence[torch.Tensor]) -> 'PackedTargets':
        """Pack per-image labels ``(n_i,)`` and boxes ``(n_i, 4)``.

        Raises:
            ValueError: the lists differ in length, or an image has a
                different number of labels and boxes.
        """
        if len(gt_labels) != len(gt_boxes):
            raise ValueError(f'{len(gt_labels)} label lists but '
                             f'{len(gt_boxes)} box lists')
        for i, (labels, boxes) in enumerate(zip(gt_labels, gt_boxes)):
            if len(labels) != len(boxes):
                raise ValueError(f'gt of image {i}: {len(boxes)} boxes but '
                                 f'{len(labels)} labels')
        labels = PackedList(lab.long() for lab in gt_labels)
        # half widened, as every consumer computes in float32 or wider
        boxes = PackedList(
            box.float() if box.dtype in (torch.float16, torch.bfloat16) else
            box for box in gt_boxes)
        counts = [len(lab) for lab in labels]
        device = boxes[0].device if len(boxes) else torch.device('cpu')
        if labels and max(counts):
            padded_labels = pad_sequence(list(labels), batch_first=True)
            padded_boxes = pad_sequence(list(boxes), batch_first=True)
        else:
            dtype = boxes[0].dtype if len(boxes) else torch.float32
            padded_labels = torch.zeros((len(labels), 0), dtype=torch.long,
                                        device=device)
            padded_boxes = torch.zeros((len(labels), 0, 4), dtype=dtype,
                                       device=device)
        valid = torch.arange(
            padded_labels.shape[1], device=device)[None] < torch.tensor(
                counts, device=device)[:, None]
        flat_boxes = torch.cat(list(boxes)) if len(boxes) else \
            padded_boxes.reshape(0, 4)
        offsets = [0]
        for n in counts[:-1]:
            offsets.append(offsets[-1] + n)
        pack = cls(
            labels=labels,
            boxes=boxes,
            counts=counts,
            padded_labels=padded_labels,
            padded_boxes=padded_boxes,
            padded_xyxy=bbox_cxcywh_to_xyxy(padded_boxes),
            valid=valid,
            flat_labels=torch.cat(list(labels)) if len(labels) else
            padded_labels.reshape(0),
            flat_boxes=flat_boxes,
            flat_xyxy=bbox_cxcywh_to_xyxy(flat_boxes),
            offsets=offsets[:len(counts)])
        labels.pack = boxes.pack = pack
        return pack

    @classmethod
    def of(cls, gt_labels: Sequence[torch.Tensor],
           gt_boxes: Sequence[torch.Tensor]) -> 'PackedTargets':
        """The pack these lists came from, else a new one."""
        pack = getattr(gt_labels, 'pack', None)
        if pack is not None and getattr(gt_boxes, 'pack', None) is pack:
            return pack
        return cls.pack(gt_labels, gt_boxes)
