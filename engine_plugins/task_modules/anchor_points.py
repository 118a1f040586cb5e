"""Anchor points of all levels in grid units, from mmdet's point generator."""
from typing import Sequence, Tuple

import torch
from mmdet.models.task_modules.prior_generators import MlvlPointGenerator


def make_anchor_points(
    featmap_sizes: Sequence[Tuple[int, int]],
    strides: Sequence[int],
    device: torch.device = torch.device('cpu')
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Cell centres of every level, concatenated level by level.

    Returns:
        ``(points, strides)``: ``(A, 2)`` centres ``(x + 0.5, y + 0.5)`` in
        grid units of their level (row-major), and ``(A, 1)`` the stride of
        each; ``points * strides`` are pixel coordinates.
    """
    generator = MlvlPointGenerator(list(strides), offset=0.5)
    priors = torch.cat(
        generator.grid_priors(featmap_sizes, device=device, with_stride=True))
    stride = priors[:, 2:3]
    return priors[:, :2] / stride, stride
