"""Assigners, box coders and overlap metrics."""
from .anchor_points import make_anchor_points
from .assigners import (BatchedHungarianMatcher, NonFiniteMatchCostError,
                        TALTargets, YOLOv8TaskAlignedAssigner)
from .coders import DFLBoxCoder
from .overlaps import bbox_ciou, pairwise_giou

__all__ = [
    'BatchedHungarianMatcher', 'DFLBoxCoder', 'NonFiniteMatchCostError',
    'TALTargets', 'YOLOv8TaskAlignedAssigner', 'bbox_ciou',
    'make_anchor_points', 'pairwise_giou'
]
