"""Data transforms (registered in ``TRANSFORMS``)."""

__all__ = []
