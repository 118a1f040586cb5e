"""Metrics: detection evaluation helpers and task metrics."""
from .ris import RISDoAMetric

__all__ = ['RISDoAMetric']
