"""Varifocal loss in RT-DETR's form."""
import torch
import torch.nn.functional as F
from torch import nn

from engine_plugins.registry import MODELS


@MODELS.register_module()
class RTDETRVarifocalLoss(nn.Module):
    """BCE against IoU-aware soft targets, down-weighting easy negatives.

    ``target`` is ``(..., C)``: the IoU of a matched query's box with its gt
    at the gt's class, 0 everywhere else (background queries are all
    zeros; there is no background class index). Per element the weight is
    ``target`` on the gt's class and ``alpha * sigmoid(pred)**gamma`` on
    every other entry, with the prediction detached. The loss is the
    weighted BCE summed over all elements and divided by ``avg_factor``
    (the number of gt boxes).

    mmdet's ``VarifocalLoss`` differs in two ways that change RT-DETR's
    training: its modulating factor is not detached (gradient flows
    through the weight), and a matched query whose IoU is 0 is weighted
    as a negative.

    Args:
        alpha: Weight of negatives (0.75).
        gamma: Focusing power (2.0).
        loss_weight: Multiplier of the result.

    Example:
        >>> loss_cls = dict(type='RTDETRVarifocalLoss', alpha=0.75,
        ...                 gamma=2.0, loss_weight=1.0)
    """

    def __init__(self,
                 alpha: float = 0.75,
                 gamma: float = 2.0,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        self.alpha = alpha
        self.gamma = gamma
        self.loss_weight = loss_weight

    def forward(self, pred: torch.Tensor, target: torch.Tensor,
                positive: torch.Tensor,
                avg_factor: torch.Tensor) -> torch.Tensor:
        """Args:
            pred: Logits ``(..., C)``.
            target: IoU-aware targets, same shape.
            positive: Bool, same shape: the gt-class entry of each matched
                query (whatever its IoU).
            avg_factor: Divisor (number of gt boxes, at least 1).
        """
        if pred.shape != target.shape or target.shape != positive.shape:
            raise ValueError(
                f'RTDETRVarifocalLoss: pred {tuple(pred.shape)}, target '
                f'{tuple(target.shape)} and positive '
                f'{tuple(positive.shape)} must have the same shape')
        negative_weight = self.alpha * pred.detach().sigmoid().pow(
            self.gamma)
        weight = torch.where(positive, target, negative_weight)
        loss = F.binary_cross_entropy_with_logits(
            pred, target, weight=weight, reduction='sum')
        return loss / avg_factor * self.loss_weight
