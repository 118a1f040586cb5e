"""Assigners, box coders and overlap metrics."""
from .assigners import TALTargets, YOLOv8TaskAlignedAssigner
from .overlaps import bbox_ciou

__all__ = ['TALTargets', 'YOLOv8TaskAlignedAssigner', 'bbox_ciou']
