"""COCO box evaluation on faster-coco-eval."""
from .fast_coco_metric import FastCocoMetric, match_pycocotools, stat_names

__all__ = ['FastCocoMetric', 'match_pycocotools', 'stat_names']
