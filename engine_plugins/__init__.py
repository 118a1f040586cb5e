"""engine_plugins: MMEngine training tasks with a sanity engine.

Importing the package applies the stack fixes of :mod:`engine_plugins.compat`
and makes the ``engine_plugins`` registry scope available.
"""
from . import compat
from .version import __version__

compat.apply_all()

__all__ = ['__version__', 'compat']
