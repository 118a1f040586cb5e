"""One-to-one matching of DETR queries to ground truths, a batch at a time.

mmdet's ``HungarianAssigner`` computes the costs of one image per call and
moves each cost matrix to the host on its own. RT-DETR matches 7 times per
step (6 decoder layers and the encoder output), so this matcher computes
every cost term once for the whole batch, with mmdet's match costs, and
crosses to the host twice per call (check flags, then the costs) whatever
the batch size.
"""
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from mmdet.models.task_modules.assigners.match_cost import (BBoxL1Cost,
                                                            ClassificationCost,
                                                            FocalLossCost,
                                                            IoUCost)
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy
from mmengine.structures import InstanceData
from scipy.optimize import linear_sum_assignment
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

from engine_plugins.engine.fp32_region import cast_floating, fp32_region
from engine_plugins.engine.sanity.errors import TrainingSanityError
from engine_plugins.engine.sanity.preflight import TargetFormatError
from engine_plugins.registry import TASK_UTILS
from engine_plugins.structures import PackedTargets
from ..overlaps import pairwise_giou

# Boxes arrive normalized, so the costs' division by the image size must be
# the identity.
_UNIT_META = dict(img_shape=(1, 1))
# Costs that see a GT only through its label, and costs that broadcast over
# a leading batch dimension (bbox_overlaps and cdist are batched).
_LABEL_COSTS = (FocalLossCost, ClassificationCost)
_BOX_COSTS = (BBoxL1Cost, IoUCost)
_INPUTS = ('cls_logits (prediction)', 'pred_boxes (prediction)',
           'gt_boxes (ground truth)')


# Entries per group of images a cost term is computed on (CPU): 1 MiB of
# float32, so that each step's temporaries stay in the CPU caches.
_CHUNK = 2**18

# Cost standing in for a non-finite one: finite, above any real cost.
_UNMATCHABLE = 1e8


class NonFiniteMatchCostError(TrainingSanityError):
    """A ground truth of the matcher, or a cost computed from finite
    inputs, is NaN or infinite."""

    cause = 'box_format'


@TASK_UTILS.register_module()
class BatchedHungarianMatcher:
    """Match each GT to one query, minimizing the summed cost per image.

    The cost of query ``q`` for GT ``j`` is the sum of the weighted mmdet
    match costs (their ``weight`` is applied inside each cost). Each image
    is solved exactly with ``scipy.optimize.linear_sum_assignment``: every
    GT gets a distinct query (when ``n_i <= Q``) and the total cost is the
    minimum over all such one-to-one assignments, not a greedy choice.
    Unmatched queries are background.

    Worked example: one image, 3 queries, 2 GTs, and the cost matrix
    ``[[1, 2], [1.5, 10], [5, 5]]`` (rows are queries). Greedy matching
    gives GT 0 to query 0 (cost 1), leaving GT 1 to query 2 (cost 5),
    total 6. The matcher returns ``(tensor([0, 1]), tensor([1, 0]))``:
    query 0 takes GT 1 and query 1 takes GT 0, total 3.5; query 2 is
    background.

    All costs run in float32 (autocast off, half inputs widened), with no
    gradient. Non-finite *predictions* are the model's failure, not the
    matcher's: their costs are replaced by a large finite value (such
    queries are matched last) and the losses carry the NaN on, where the
    sanity engine skips the step and names the module that produced it. A
    non-finite ground truth, or a non-finite cost from finite inputs,
    raises :class:`NonFiniteMatchCostError`, naming the cost term, the
    images and the inputs; a label outside ``[0, C)`` raises
    ``TargetFormatError``. The checks move one small flag tensor to the
    host per call.

    Args:
        match_costs: mmdet match-cost configs (or built cost objects), as
            ``HungarianAssigner`` takes them. ``FocalLossCost``,
            ``ClassificationCost``, ``BBoxL1Cost`` and ``IoUCost`` run
            batched; any other cost gets the flattened batch (all queries
            against all GTs) and must accept 2-D inputs.

    Example:
        >>> matcher = TASK_UTILS.build(dict(
        ...     type='BatchedHungarianMatcher',
        ...     match_costs=[
        ...         dict(type='FocalLossCost', weight=2.0, alpha=0.25,
        ...              gamma=2.0),
        ...         dict(type='BBoxL1Cost', weight=5.0, box_format='xywh'),
        ...         dict(type='IoUCost', iou_mode='giou', weight=2.0)]))
        >>> matches = matcher(cls_logits, pred_boxes, gt_labels, gt_boxes)
        >>> query_idx, gt_idx = matches[0]  # image 0
    """

    def __init__(self, match_costs: Union[dict, Sequence[dict]]) -> None:
        if isinstance(match_costs, dict):
            match_costs = [match_costs]
        if not match_costs:
            raise ValueError('match_costs is empty: give at least one cost, '
                             "e.g. dict(type='BBoxL1Cost', weight=5.0)")
        self.match_costs = [
            TASK_UTILS.build(cost) if isinstance(cost, dict) else cost
            for cost in match_costs
        ]
        for cost in self.match_costs:
            if getattr(cost, 'binary_input', False):
                raise ValueError(
                    f'{type(cost).__name__}(binary_input=True) matches '
                    'masks; BatchedHungarianMatcher matches labels and boxes')

    def __call__(self, cls_logits: Tensor, pred_boxes: Tensor,
                 gt_labels: Sequence[Tensor],
                 gt_boxes: Sequence[Tensor]) -> List[Tuple[Tensor, Tensor]]:
        """Match.

        Args:
            cls_logits: ``(B, Q, C)`` classification logits (pre-sigmoid).
            pred_boxes: ``(B, Q, 4)`` normalized cxcywh boxes.
            gt_labels: ``B`` tensors ``(n_i,)`` of class ids in ``[0, C)``.
            gt_boxes: ``B`` tensors ``(n_i, 4)`` of normalized cxcywh boxes.

        Returns:
            Per image, ``(query_idx, gt_idx)``: int64 tensors of length
            ``min(Q, n_i)`` on ``cls_logits.device``, sorted by query index
            (empty for an image without GTs).
        """
        blocks = self.cost_blocks(cls_logits, pred_boxes, gt_labels, gt_boxes)
        rows, cols = [], []
        for block in blocks:
            row, col = linear_sum_assignment(block.numpy())  # rows sorted
            rows.append(row)
            cols.append(col)
        sizes = [len(row) for row in rows]
        # One host-to-device copy for the whole batch.
        flat = torch.from_numpy(np.concatenate(rows + cols).astype(np.int64))
        flat = flat.to(cls_logits.device)
        total = sum(sizes)
        return list(zip(flat[:total].split(sizes), flat[total:].split(sizes)))

    @torch.no_grad()
    def cost_blocks(self, cls_logits: Tensor, pred_boxes: Tensor,
                    gt_labels: Sequence[Tensor],
                    gt_boxes: Sequence[Tensor]) -> List[Tensor]:
        """Summed weighted costs: per image a CPU tensor ``(Q, n_i)``,
        float32 (float64 if the inputs are).

        Arguments as for ``__call__``.
        """
        _check_shapes(cls_logits, pred_boxes, gt_labels, gt_boxes)
        batch, num_queries, num_classes = cls_logits.shape
        # Padded and converted once per batch of gts: RT-DETR hands the
        # same packed lists to all 7 matchings of a step.
        targets = PackedTargets.of(gt_labels, gt_boxes)
        gt_labels, num_gts = targets.labels, targets.counts
        with fp32_region():
            logits, boxes = cast_floating((cls_logits, pred_boxes))
            device = logits.device
            gts = targets.padded_boxes.to(device)
            valid = targets.valid.to(device)
            labels = targets.padded_labels.to(device)
            # Out-of-range labels are reported below; clamped, they cannot
            # crash an indexing kernel first.
            bad_label = ((labels < 0) | (labels >= num_classes)) & valid
            labels = labels.clamp(0, num_classes - 1)
            inputs = (logits, bbox_cxcywh_to_xyxy(boxes), labels,
                      targets.padded_xyxy.to(device))
            total, sums = self._total(inputs, gt_labels, num_gts, valid)
            # A non-finite cost makes its image's sum non-finite (so can an
            # overflowing sum: _non_finite looks again, entry by entry).
            flags = torch.stack([
                ~torch.isfinite(gts).flatten(1).all(1),
                bad_label.any(1), ~torch.isfinite(sums)
            ]).cpu().numpy()  # (3, B): the checks' one host sync
            if flags.any():
                total = self._non_finite(flags, inputs, boxes, gt_labels,
                                         num_gts, valid, total)
            if total.device.type != 'cpu':
                total = total.cpu()
        return [total[b, :, :n] for b, n in enumerate(num_gts)]

    def _total(self, inputs: Tuple[Tensor, ...], gt_labels: Sequence[Tensor],
               num_gts: List[int],
               valid: Tensor) -> Tuple[Tensor, Tensor]:
        """``(B, Q, N)`` sum of the terms in the order given, as
        ``HungarianAssigner`` sums them, on groups of images (see
        ``_term``); and ``(B,)`` the sum of each image's costs, taken
        while its group is in the caches."""
        logits = inputs[0]
        batch, num_queries, num_classes = logits.shape
        if not max(num_gts, default=0):
            return (logits.new_zeros(batch, num_queries, 0),
                    logits.new_zeros(batch))
        per_image = num_queries * max(num_classes, valid.shape[1])
        step = batch if logits.device.type != 'cpu' else max(
            1, _CHUNK // per_image)
        parts = []
        for start in range(0, batch, step):
            part = slice(start, start + step)
            if not max(num_gts[part]):
                parts.append(logits.new_zeros(
                    len(num_gts[part]), num_queries, valid.shape[1]))
                continue
            total = None
            for cost in self.match_costs:
                term = self._term(cost, *(t[part] for t in inputs),
                                  gt_labels[part], num_gts[part])
                # in place; bitwise the same as stacking and summing
                total = term if total is None else total.add_(term)
            parts.append(total)
        sums = torch.cat([part.sum((1, 2)) for part in parts])
        return (parts[0] if len(parts) == 1 else torch.cat(parts)), sums

    def _non_finite(self, flags: np.ndarray, inputs: Tuple[Tensor, ...],
                    boxes: Tensor, gt_labels: Sequence[Tensor],
                    num_gts: List[int], valid: Tensor,
                    total: Tensor) -> Tensor:
        """Raise for bad ground truths or labels, and for non-finite costs
        from finite inputs; replace those from non-finite predictions.
        Only runs on failure, so it may sync again."""
        logits = inputs[0]
        checks = torch.stack([
            ~torch.isfinite(logits).flatten(1).all(1),
            ~torch.isfinite(boxes).flatten(1).all(1),
            (~torch.isfinite(total) & valid[:, None]).flatten(1).any(1)
        ]).cpu().numpy()
        flags = np.concatenate([checks[:2], flags[:2], checks[2:]])  # (5, B)
        if not flags[2:].any():  # padding columns only, or an overflow
            return total
        if flags[2:4].any() or (flags[4] & ~(flags[0] | flags[1])).any():
            terms = [
                self._term(cost, *inputs, gt_labels, num_gts)
                for cost in self.match_costs
            ]
            self._raise(flags, terms, valid, gt_labels, logits.shape[-1])
        return torch.nan_to_num(
            total, nan=_UNMATCHABLE, posinf=_UNMATCHABLE,
            neginf=-_UNMATCHABLE)

    def _term(self, cost, logits: Tensor, pred_xyxy: Tensor, labels: Tensor,
              gt_xyxy: Tensor, gt_labels: Sequence[Tensor],
              num_gts: List[int]) -> Tensor:
        """One weighted cost term on padded blocks ``(b, Q, N)``.

        mmdet's costs take 2-D inputs, so the plain way to batch them is to
        flatten: all ``B * Q`` queries against all ``sum(n_i)`` GTs. That
        computes ``B`` times the needed entries (the off-diagonal blocks
        pair queries with other images' GTs), and the waste is not cheap:
        benchmarks/bench_matching.py (CPU, batch 16, 300 queries, 10-100
        GTs per image) measured it 5-30x slower than mmdet's per-image
        calls. So the known costs compute the diagonal blocks only, with
        mmdet's cost objects or their arithmetic (every entry is bitwise
        mmdet's):

        * a focal cost (``_focal_cost``) on the logit of each GT's class,
          gathered first, when there are fewer GT slots than classes (the
          cost is elementwise in the logits); otherwise, and for other
          label costs, a table over all classes, gathered per GT;
        * a box cost broadcast over images, on GTs padded to
          ``N = max n_i``.

        On the CPU, ``_total`` calls this on groups of images of about
        ``_CHUNK`` entries: with batch-sized temporaries every arithmetic
        step falls out of the CPU caches (batch 16 x 300 queries x 100
        GTs, 1 thread: 1.25x slower in one piece than in groups of 2**18
        entries, 1.1x slower in groups of 2**16). Any other cost gets the
        flattened group.
        """
        batch, num_queries, num_classes = logits.shape
        kind = self._batched_kind(cost)
        if kind == 'label':
            width = labels.shape[1]
            index = labels[:, None, :].expand(-1, num_queries, -1)
            if type(cost) is FocalLossCost:
                if width < num_classes:
                    return _focal_cost(cost, logits.gather(2, index))
                return _focal_cost(cost, logits).gather(2, index)
            classes = torch.arange(num_classes, device=logits.device)
            table = cost(
                InstanceData(scores=logits.flatten(0, 1)),
                InstanceData(labels=classes),
                img_meta=_UNIT_META)
            return table.view(batch, num_queries, -1).gather(2, index)
        if kind == 'box':
            if type(cost) is IoUCost and cost.iou_mode in ('iou', 'giou'):
                # mmdet's arithmetic, without its (b, Q, N, 2) temporaries
                return pairwise_giou(pred_xyxy, gt_xyxy,
                                     cost.iou_mode).neg_().mul_(cost.weight)
            return cost(
                InstanceData(bboxes=pred_xyxy),
                InstanceData(bboxes=gt_xyxy),
                img_meta=_UNIT_META)
        device = logits.device
        flat_gt = InstanceData(
            labels=torch.cat([lab.to(device) for lab in gt_labels]).long(),
            bboxes=torch.cat([g[:n] for g, n in zip(gt_xyxy, num_gts)]))
        flat_gt.labels.clamp_(0, num_classes - 1)
        full = cost(
            InstanceData(
                scores=logits.flatten(0, 1), bboxes=pred_xyxy.flatten(0, 1)),
            flat_gt,
            img_meta=_UNIT_META).view(batch, num_queries, -1)
        # Image b's GT slot j -> its column in the flat cost.
        starts = np.cumsum([0] + num_gts[:-1]).tolist()
        ranges = [
            torch.arange(s, s + n, device=device)
            for s, n in zip(starts, num_gts)
        ]
        columns = pad_sequence(ranges, batch_first=True)
        if columns.shape[1] < gt_xyxy.shape[1]:  # a group's own padding
            columns = F.pad(columns, (0, gt_xyxy.shape[1] - columns.shape[1]))
        return full.gather(2, columns[:, None, :].expand(-1, num_queries, -1))

    @staticmethod
    def _batched_kind(cost) -> Optional[str]:
        """``'label'``, ``'box'`` or None (flattened) for a cost object."""
        # Exact types: a subclass may compute something else.
        if type(cost) in _LABEL_COSTS:
            return 'label'
        return 'box' if type(cost) in _BOX_COSTS else None

    def _raise(self, flags: np.ndarray, terms: List[Tensor], valid: Tensor,
               gt_labels: Sequence[Tensor], num_classes: int) -> None:
        """Name the out-of-range labels, or the non-finite cost terms and
        inputs. Only runs on failure, so it may sync per term."""
        if flags[3].any():
            b = int(flags[3].nonzero()[0][0])
            labels = gt_labels[b]
            bad = labels[(labels < 0) | (labels >= num_classes)].tolist()
            raise TargetFormatError(
                f'gt_labels of image {b} hold {bad}, outside [0, '
                f'{num_classes}) (cls_logits has {num_classes} classes)')
        bad_terms = []
        for cost, term in zip(self.match_costs, terms):
            bad = (~torch.isfinite(term) & valid[:, None]).flatten(1).any(1)
            if bad.any():
                images = bad.nonzero().flatten().tolist()
                bad_terms.append(f'{type(cost).__name__} (images {images})')
        inputs = [
            f'image {b}: ' +
            ', '.join(name for name, bad in zip(_INPUTS, flags[:3, b]) if bad)
            for b in flags[:3].any(0).nonzero()[0].tolist()
        ]
        if bad_terms:
            msg = 'Hungarian matching got non-finite costs from ' + \
                ', '.join(bad_terms) + '. '
            msg += ('Non-finite inputs: ' + '; '.join(inputs) if inputs else
                    'All inputs are finite, so a cost overflowed: boxes far '
                    'outside the normalized [0, 1] range?')
        else:
            msg = ('Hungarian matching got non-finite inputs: ' +
                   '; '.join(inputs) + '. The costs stayed finite (a sigmoid '
                   'saturates at +-inf) but the losses will not')
        cause = 'nonfinite_data' if flags[2].any() else 'box_format'
        raise NonFiniteMatchCostError(msg, cause)


def _focal_cost(cost: FocalLossCost, logits: Tensor) -> Tensor:
    """``FocalLossCost`` of each logit as the cost of its own class.

    Bitwise mmdet's ``_focal_loss_cost`` (same operations in the same
    order), elementwise in any shape, with in-place steps: the matcher's
    largest term, and mmdet allocates a fresh tensor for each of its ~15
    steps. The positive minus negative part is taken before the per-GT
    gather, which gives the same values.
    """
    prob = logits.sigmoid()
    neg = (1 - prob).add_(cost.eps).log_().neg_().mul_(1 - cost.alpha)
    neg.mul_(prob.pow(cost.gamma))
    pos = (prob + cost.eps).log_().neg_().mul_(cost.alpha)
    pos.mul_(prob.neg_().add_(1).pow_(cost.gamma))
    return pos.sub_(neg).mul_(cost.weight)


def _check_shapes(cls_logits: Tensor, pred_boxes: Tensor,
                  gt_labels: Sequence[Tensor],
                  gt_boxes: Sequence[Tensor]) -> None:
    if cls_logits.dim() != 3:
        raise ValueError('cls_logits must be (B, Q, C), got shape '
                         f'{tuple(cls_logits.shape)}')
    if pred_boxes.dim() != 3 or pred_boxes.shape[-1] != 4:
        raise ValueError('pred_boxes must be (B, Q, 4) cxcywh, got shape '
                         f'{tuple(pred_boxes.shape)}')
    if pred_boxes.shape[:2] != cls_logits.shape[:2]:
        raise ValueError(
            f'cls_logits {tuple(cls_logits.shape)} and pred_boxes '
            f'{tuple(pred_boxes.shape)} disagree on (B, Q)')
    batch = cls_logits.shape[0]
    if len(gt_labels) != batch or len(gt_boxes) != batch:
        raise ValueError(
            f'predictions hold {batch} images but gt_labels has '
            f'{len(gt_labels)} tensors and gt_boxes {len(gt_boxes)}')
    for i, (labels, boxes) in enumerate(zip(gt_labels, gt_boxes)):
        if boxes.dim() != 2 or boxes.shape[-1] != 4:
            raise ValueError(f'gt_boxes[{i}] must be (n, 4) cxcywh, got '
                             f'shape {tuple(boxes.shape)}')
        if tuple(labels.shape) != (len(boxes), ):
            raise ValueError(
                f'gt_labels[{i}] has shape {tuple(labels.shape)} but '
                f'gt_boxes[{i}] holds {len(boxes)} boxes')
        if labels.is_floating_point() or labels.is_complex() or \
                labels.dtype == torch.bool:
            raise ValueError(f'gt_labels[{i}] must hold integer class ids, '
                             f'got {labels.dtype}')
