"""Data transforms (registered in ``TRANSFORMS``)."""
from .letterbox import LetterBox

__all__ = ['LetterBox']
