from .batched_hungarian_matcher import (BatchedHungarianMatcher,
                                        NonFiniteMatchCostError)
from .yolov8_tal_assigner import TALTargets, YOLOv8TaskAlignedAssigner

__all__ = [
    'BatchedHungarianMatcher', 'NonFiniteMatchCostError', 'TALTargets',
    'YOLOv8TaskAlignedAssigner'
]
