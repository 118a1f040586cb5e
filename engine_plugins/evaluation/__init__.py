"""Metrics: detection evaluation helpers and task metrics."""
from .coco import FastCocoMetric
from .ris import RISDoAMetric

__all__ = ['FastCocoMetric', 'RISDoAMetric']
