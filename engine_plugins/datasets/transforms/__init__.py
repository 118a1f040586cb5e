"""Data transforms (registered in ``TRANSFORMS``)."""
from .letterbox import LetterBox
from .prefilled_cached_mosaic import PrefilledCachedMosaic

__all__ = ['LetterBox', 'PrefilledCachedMosaic']
