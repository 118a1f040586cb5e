"""Metrics: detection evaluation helpers and task metrics."""

__all__ = []
