"""Import ultralytics as a test and benchmark oracle, offline.

ultralytics is an optional dependency (``pip install --no-deps
ultralytics==8.2.103``; ``tools/install.sh`` does it). Its package
``__init__`` reads ``torchvision``'s version and imports it, but the parts
used as oracles here (the task-aligned assigner, the RT-DETR Hungarian
matcher) never call torchvision. A CPU-only torch has no working
torchvision wheel on PyPI, so when torchvision is missing, the import runs
with an empty stand-in module and a version entry of ``0.0.0``, removed
again afterwards; anything that really calls torchvision then fails
loudly with an ``AttributeError``.

Usage::

    modules = import_ultralytics('ultralytics.utils.tal')  # None if missing
    if modules is not None:
        TaskAlignedAssigner = modules[0].TaskAlignedAssigner
"""
import contextlib
import importlib
import importlib.metadata as metadata
import importlib.util
import os
import sys
import tempfile
import types
from typing import List, Optional

ORACLE_VERSION = '8.2.103'


class _StandInDistribution(metadata.Distribution):
    """Package metadata that says only a name and a version."""

    def __init__(self, name: str) -> None:
        self._name = name

    def read_text(self, filename: str) -> Optional[str]:
        if filename == 'METADATA':
            return (f'Metadata-Version: 2.1\nName: {self._name}\n'
                    'Version: 0.0.0\n')
        return None

    def locate_file(self, path):
        return None


class _StandInFinder(metadata.DistributionFinder):
    """Answers metadata lookups for the stand-in modules only."""

    def __init__(self, names) -> None:
        self.names = set(names)

    def find_spec(self, *args, **kwargs):
        return None

    def find_distributions(self,
                           context=metadata.DistributionFinder.Context()):
        if context.name in self.names:
            return iter([_StandInDistribution(context.name)])
        return iter(())


@contextlib.contextmanager
def _torchvision_stand_in():
    """Make ``import torchvision`` and its version lookup succeed inside the
    block when torchvision is absent or broken; undo both afterwards, so
    that other libraries (transformers checks ``find_spec('torchvision')``)
    keep seeing no torchvision."""
    try:
        importlib.import_module('torchvision')
        yield
        return
    except Exception:  # absent, or a wheel built for another torch
        pass
    saved = sys.modules.pop('torchvision', None)
    module = types.ModuleType('torchvision')
    module.__version__ = '0.0.0'
    sys.modules['torchvision'] = module
    finder = _StandInFinder(['torchvision'])
    sys.meta_path.append(finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
        if saved is None:
            sys.modules.pop('torchvision', None)
        else:
            sys.modules['torchvision'] = saved


def import_ultralytics(*names: str) -> Optional[List[types.ModuleType]]:
    """Import ultralytics submodules, or return None when it is missing.

    Args:
        names: Dotted module names, e.g. ``'ultralytics.utils.tal'``.

    Sets ``YOLO_OFFLINE`` and points ultralytics' settings directory at a
    temporary folder, so importing it writes nothing under ``$HOME`` and
    reaches no network, and sets ``YOLO_VERBOSE=False``: otherwise the
    first import on a machine prints a settings-file notice to stdout,
    ahead of a benchmark's own first line. Import every submodule you need
    in this one call: the torchvision stand-in exists only during it.
    """
    if importlib.util.find_spec('ultralytics') is None:
        return None
    os.environ.setdefault('YOLO_OFFLINE', '1')
    os.environ.setdefault('YOLO_VERBOSE', 'False')
    os.environ.setdefault(
        'YOLO_CONFIG_DIR',
        os.path.join(tempfile.gettempdir(), 'ultralytics_oracle_settings'))
    with _torchvision_stand_in():
        return [importlib.import_module(name) for name in names]


def ultralytics_version() -> Optional[str]:
    """The installed ultralytics version, or None."""
    try:
        return metadata.version('ultralytics')
    except metadata.PackageNotFoundError:
        return None
