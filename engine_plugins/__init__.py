"""engine_plugins: MMEngine training tasks with a sanity engine.

Importing the package changes nothing in mmengine or torch. The tools and
``engine_plugins.utils.build_runner`` apply the stack fixes of
:mod:`engine_plugins.compat` explicitly
(:func:`engine_plugins.compat.apply_runtime_fixes`).
"""
from . import compat
from .version import __version__

__all__ = ['__version__', 'compat']
