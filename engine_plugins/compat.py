"""Fixes for the pinned stack (torch 2.13, mmengine 0.10.7) that have no
public extension point, applied explicitly by :func:`apply_runtime_fixes`.

Importing ``engine_plugins`` changes nothing in mmengine or torch: the
tools (``tools/train.py``, ``test.py``, ``hpo.py``) and
``engine_plugins.utils.build_runner`` call :func:`apply_runtime_fixes`,
and a script that builds its own Runner calls it too. What used to be
patched and now goes through public extension points instead:
atomic checkpoint writes (the ``atomic_local`` file backend of
``SafeCheckpointHook``), AMP on a CPU (``PortableAmpOptimWrapper``,
registered as ``AmpOptimWrapper`` in our scope) and DDP on a CPU
(``PortableDistributedDataParallel`` and
``engine_plugins.engine.cpu_distributed.prepare_distributed``).

Each fix is a small function with a test in ``tests/test_compat.py``; see
:func:`apply_runtime_fixes` for the list and what would make each one
unnecessary.
"""
import os
import pickle
from typing import Any, Callable, Mapping, Optional, Union

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

_APPLIED = False
_HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')


def _history_buffer_getattr(obj: Any, name: str) -> Callable:
    """``getattr`` as the weights-only unpickler sees it.

    ``HistoryBuffer.__getstate__`` pickles its statistics methods as
    ``getattr(HistoryBuffer, 'mean')``. Only that form is resolved; any
    other attribute access in a checkpoint is refused.
    """
    if obj is HistoryBuffer and name in _HISTORY_BUFFER_METHODS:
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'checkpoint asks for getattr({obj!r}, {name!r}); only '
        'HistoryBuffer statistics methods are allowed')


def _numpy_globals() -> list:
    multiarray = getattr(np, '_core', None) or np.core
    dtype_classes = {
        type(np.dtype(code))
        for code in np.typecodes['All'] if code not in ('M', 'm')
    }
    dtype_classes |= {type(np.dtype('M8[s]')), type(np.dtype('m8[s]'))}
    return [
        multiarray.multiarray._reconstruct, multiarray.multiarray.scalar,
        np.ndarray, np.dtype, *sorted(dtype_classes, key=str)
    ]


def mmengine_safe_globals() -> list:
    """What mmengine checkpoints pickle besides tensors, in the form
    ``torch.serialization.safe_globals`` / ``add_safe_globals`` take."""
    return [
        HistoryBuffer,
        *_numpy_globals(),
        (_history_buffer_getattr, 'builtins.getattr'),
    ]


def allow_mmengine_checkpoints() -> None:
    """Allowlist what mmengine checkpoints pickle besides tensors."""
    torch.serialization.add_safe_globals(mmengine_safe_globals())


def explain_checkpoint_errors() -> None:
    """Register a local checkpoint loader that names the file and what is
    wrong with it, and verifies the weights' checksums."""
    from mmengine.runner.checkpoint import load_from_local as mmengine_load

    from .engine.checkpoints.checkpoint_files import (CheckpointFileError,
                                                      diagnose_file)
    from .engine.checkpoints.state_checksums import verify_checksums

    def load_from_local(filename: str,
                        map_location: Optional[Union[str, Callable]] = None):
        path = os.path.expanduser(filename)
        if not os.path.isfile(path):
            raise FileNotFoundError(f'checkpoint file not found: {filename}')
        damage = diagnose_file(path)
        if damage is not None:
            raise CheckpointFileError(
                f'cannot load checkpoint {filename}: {damage}. Use another '
                'checkpoint (an automatic resume picks the newest intact '
                'one in the work dir).')
        try:
            checkpoint = mmengine_load(filename, map_location=map_location)
        except pickle.UnpicklingError as exc:
            if 'Weights only load failed' not in str(exc):
                raise CheckpointFileError(
                    f'cannot load checkpoint {filename}: its pickle stream '
                    f'is damaged or truncated ({exc})') from None
            raise pickle.UnpicklingError(
                f'refused to load checkpoint {filename!r}: it contains a '
                'Python object outside the weights-only allowlist. '
                'engine_plugins loads every checkpoint with '
                'weights_only=True so that a file cannot run code. If you '
                'trust this file, allowlist the global named below with '
                'torch.serialization.add_safe_globals([...]) before the '
                f'run.\n{exc}') from None
        except (EOFError, IndexError, OSError, RuntimeError, ValueError,
                KeyError) as exc:
            raise CheckpointFileError(
                f'cannot load checkpoint {filename}: '
                f'{type(exc).__name__}: {exc}. The file is damaged or was '
                'not written by torch.save.') from None
        if not isinstance(checkpoint, Mapping):
            raise CheckpointFileError(
                f'checkpoint {filename} holds a {type(checkpoint).__name__}, '
                'not a dict of weights (or a dict with a state_dict entry)')
        verify_checksums(checkpoint, filename)
        return checkpoint

    load_from_local._engine_plugins = True
    # '' is the prefix of local paths: the public way to replace the
    # local loader.
    CheckpointLoader.register_scheme('', load_from_local, force=True)


def explain_build_errors() -> None:
    """Explain unknown types and arguments in every registry build.

    ``Registry.build`` itself is wrapped: a registry copies its parent's
    ``build_func`` when it is made, so replacing that function misses every
    registry made before this runs (ours too, once an earlier fix imports
    a module that registers parts), and the Runner builds through
    mmengine's root registries with their own build functions.
    """
    import sys

    import mmengine.registry.build_functions as build_functions
    from mmengine.optim import DefaultOptimWrapperConstructor
    from mmengine.registry import Registry

    from .utils.build_errors import (explain, explain_optimizer_type,
                                     explain_registry_build)
    if getattr(Registry.build, '_engine_plugins', False):
        return
    Registry.build = explain_registry_build(Registry.build)
    # Code that calls build_from_cfg without a registry's build (e.g.
    # mmengine's weight initializers) holds the function by name.
    original = build_functions.build_from_cfg
    explained = explain(original)
    for name, module in list(sys.modules.items()):
        if (name.split('.')[0] in ('mmengine', 'mmcv', 'mmdet') and getattr(
                module, '__dict__', {}).get('build_from_cfg') is original):
            module.build_from_cfg = explained
    # The optimizer's class is looked up before it is built.
    DefaultOptimWrapperConstructor.__call__ = explain_optimizer_type(
        DefaultOptimWrapperConstructor.__call__)


def apply_runtime_fixes() -> None:
    """Apply, once per process, the fixes that have no extension point.

    * :func:`allow_mmengine_checkpoints`: torch >= 2.6 loads with
      ``weights_only=True``, and mmengine checkpoints pickle
      ``HistoryBuffer``, numpy arrays/scalars and
      ``getattr(HistoryBuffer, 'min')``-style method references, so
      ``--resume`` raised ``UnpicklingError`` (open-mmlab/mmengine#1655).
      Exactly those globals are allowlisted (``getattr`` only on
      ``HistoryBuffer``); loads stay ``weights_only=True``, unlike
      mmengine's proposed fix of turning it off (open-mmlab/mmengine#1650).
      Unnecessary once mmengine's checkpoints pickle only plain types or
      mmengine registers its safe globals itself.
    * :func:`explain_checkpoint_errors`: local checkpoints load through a
      loader registered with ``CheckpointLoader.register_scheme('')``: an
      empty, truncated, damaged or foreign file, and weights that differ
      from the checksums saved with them, fail with the file and the
      problem named instead of ``EOFError`` or a zip error. Unnecessary if
      mmengine's loader validated files (no upstream issue or change).
    * :func:`explain_build_errors`: a config with an unknown argument or
      ``type`` fails with the accepted names and the closest match, for
      every registry (``Registry.build`` is wrapped at class level: a
      registry copies its parent's ``build_func`` when made, so replacing
      that function misses registries made earlier). Unnecessary if
      mmengine's registry suggested names itself (no upstream change).
    """
    global _APPLIED
    if _APPLIED:
        return
    allow_mmengine_checkpoints()
    explain_checkpoint_errors()
    explain_build_errors()
    _APPLIED = True
