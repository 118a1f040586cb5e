"""Fixes for the pinned stack (torch 2.13, mmengine 0.10.7), applied once
when ``engine_plugins`` is imported.

Each fix is a small function with a test in ``tests/test_compat.py``:

* :func:`allow_mmengine_checkpoints` — torch >= 2.6 loads with
  ``weights_only=True``. mmengine checkpoints pickle ``HistoryBuffer``,
  numpy arrays/scalars and ``getattr(HistoryBuffer, 'min')``-style method
  references, so ``--resume`` raised ``UnpicklingError``. We allowlist
  exactly those globals (``getattr`` only on ``HistoryBuffer``) instead of
  turning ``weights_only`` off: every load, resume and ``load_from`` alike,
  stays a ``weights_only=True`` load that cannot run code.
* :func:`explain_checkpoint_errors` — local checkpoints load through a
  loader registered with ``CheckpointLoader.register_scheme``: an empty,
  truncated, damaged or foreign file, and weights that differ from the
  checksums saved with them, fail with the file and the problem named
  instead of ``EOFError`` or a zip error; an unknown global is named.
* :func:`enable_cpu_distributed` — the ``pytorch`` launcher path called
  ``torch.cuda.set_device`` and wrapped CPU models in DDP with
  ``device_ids=[local_rank]``; both fail without a GPU. On CPU the same path
  now uses gloo and ``device_ids=None``, so a 2-process CPU run exercises
  exactly the code that multi-GPU runs use.
* :func:`explain_build_errors` — a config with an unknown argument or
  ``type`` fails with the accepted names and the closest match
  (:mod:`engine_plugins.utils.build_errors`).
"""
import os
import pickle
from typing import Any, Callable, Mapping, Optional, Union

import mmengine.dist.utils as mmengine_dist_utils
import numpy as np
import torch
from mmengine.logging import print_log
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.model import MMDistributedDataParallel
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


def allow_mmengine_checkpoints() -> None:
    """Allowlist what mmengine checkpoints pickle besides tensors."""
    torch.serialization.add_safe_globals([
        HistoryBuffer,
        *_numpy_globals(),
        (_history_buffer_getattr, 'builtins.getattr'),
    ])


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


def enable_cpu_distributed() -> None:
    """Make the ``pytorch`` launcher and DDP wrapper work on CPU (gloo)."""
    original_init_dist = mmengine_dist_utils._init_dist_pytorch
    if getattr(original_init_dist, '_engine_plugins', False):
        return

    def _init_dist_pytorch(backend, init_backend='torch', **kwargs) -> None:
        from .engine.optim_wrappers.portable_amp_optim_wrapper import \
            has_accelerator
        if has_accelerator() or init_backend != 'torch':
            return original_init_dist(backend, init_backend, **kwargs)
        if backend != 'gloo':
            print_log(
                f'no GPU found: using the gloo backend instead of {backend}',
                logger='current')
        torch.distributed.init_process_group(backend='gloo', **kwargs)

    _init_dist_pytorch._engine_plugins = True
    # ``init_dist`` looks the function up in its module at call time.
    mmengine_dist_utils._init_dist_pytorch = _init_dist_pytorch

    original_ddp_init = MMDistributedDataParallel.__init__

    def ddp_init(self,
                 module,
                 detect_anomalous_params: bool = False,
                 **kwargs) -> None:
        first = next(module.parameters(), None)
        if first is not None and first.device.type == 'cpu':
            # torch DDP rejects device_ids for CPU modules.
            kwargs['device_ids'] = None
            kwargs.pop('output_device', None)
        original_ddp_init(
            self,
            module=module,
            detect_anomalous_params=detect_anomalous_params,
            **kwargs)

    MMDistributedDataParallel.__init__ = ddp_init


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


def apply_all() -> None:
    """Apply every fix once per process."""
    global _APPLIED
    if _APPLIED:
        return
    allow_mmengine_checkpoints()
    explain_checkpoint_errors()
    enable_cpu_distributed()
    explain_build_errors()
    _APPLIED = True
