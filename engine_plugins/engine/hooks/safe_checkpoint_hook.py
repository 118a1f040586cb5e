"""mmengine's ``CheckpointHook`` with nothing lost on a kill or a full disk,
checksummed weights, and strict loading."""
import inspect
import logging
import os.path as osp
from typing import Any, Dict, List, Optional, Tuple

from mmengine.dist import barrier, is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner

from engine_plugins.registry import HOOKS
from ...utils.build_errors import UnknownArgumentError
from ...utils.build_errors import _suggest as suggestion
from ..checkpoints.atomic_local_backend import BACKEND_NAME
from ..checkpoints.checkpoint_files import (POINTER_NAME,
                                            remove_stale_temporaries,
                                            resolve_resume_point,
                                            write_text_atomically)
from ..checkpoints.key_match import (CheckpointMismatchError, KeyMatch,
                                     checkpoint_weights)
from ..checkpoints.state_checksums import add_checksums

# Arguments the hook itself passes to ``Runner.save_checkpoint``.
_PASSED_BY_HOOK = ('self', 'out_dir', 'filename', 'file_client_args',
                   'save_optimizer', 'save_param_scheduler', 'meta',
                   'by_epoch', 'backend_args')


def _extra_save_arguments() -> Optional[List[str]]:
    """Extra keyword arguments ``Runner.save_checkpoint`` accepts; None when
    it takes ``**kwargs``."""
    params = inspect.signature(Runner.save_checkpoint).parameters.values()
    if any(p.kind == p.VAR_KEYWORD for p in params):
        return None
    return [p.name for p in params if p.name not in _PASSED_BY_HOOK]


class _DeferredRemovals:
    """A file backend whose ``remove``/``rmtree`` are recorded instead of
    done, so that they can run after the new file is in place."""

    def __init__(self, backend: Any, pending: List[Tuple[str, str]]) -> None:
        self._backend = backend
        self._pending = pending

    def remove(self, path: str) -> None:
        self._pending.append(('remove', path))

    def rmtree(self, path: str) -> None:
        self._pending.append(('rmtree', path))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)


@HOOKS.register_module(name=['SafeCheckpointHook', 'CheckpointHook'])
class SafeCheckpointHook(CheckpointHook):
    """``CheckpointHook`` that never leaves a run without a loadable
    checkpoint and never loads the wrong weights silently.

    Registered in the ``engine_plugins`` scope under its own name and as
    ``CheckpointHook``, so configs in that scope that name mmengine's hook
    get this one. Differences from mmengine's hook:

    * Local checkpoints are written atomically (temporary file, fsync,
      rename: ``AtomicLocalBackend``), unless ``backend_args`` or
      ``file_client_args`` choose a backend.
    * A checkpoint made obsolete by ``max_keep_ckpts`` (or a better
      ``save_best``) is deleted only after the new file is in place; a kill
      or a full disk during the save leaves the previous one.
    * The ``last_checkpoint`` pointer is written atomically. With
      ``resume=True`` and no ``load_from``, a pointer that is empty or names
      a missing or damaged file is repaired before loading: the run resumes
      from the newest intact checkpoint and says so.
    * Temporary files of interrupted saves are deleted at start-up.
    * Each checkpoint stores a CRC-32 of every weight tensor in
      ``meta['integrity']``; loading verifies it.
    * Loading (``load_from``, ``resume``, ``tools/test.py``) is strict by
      default: a checkpoint whose keys or shapes do not fit the model is
      refused with the mismatches listed by module. ``load_strict=False``
      at the top level of the config (``--non-strict`` on the tools)
      allows it and lists what keeps its initial values.
    * An argument that neither the hook nor ``Runner.save_checkpoint``
      takes fails when the hook is built, not at the first save.

    Args:
        **kwargs: ``mmengine.hooks.CheckpointHook`` arguments.

    Example:
        >>> default_hooks = dict(checkpoint=dict(
        ...     type='CheckpointHook', interval=1, max_keep_ckpts=1,
        ...     save_best='coco/bbox_mAP'))
        >>> load_strict = True  # top-level config key
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        extra = _extra_save_arguments()
        if extra is not None:
            unknown = [k for k in self.args if k not in extra]
            if unknown:
                accepted = [
                    p for p in inspect.signature(CheckpointHook.__init__).
                    parameters if p not in ('self', 'kwargs')
                ] + extra
                raise UnknownArgumentError(
                    f"CheckpointHook got an unexpected argument "
                    f"'{unknown[0]}'{suggestion(unknown[0], accepted)} "
                    f'Accepted: {", ".join(accepted)}')

    # -- start-up --------------------------------------------------------

    def _local_out_dir(self, runner: Runner) -> str:
        if self.out_dir is None:
            return runner.work_dir
        out_dir = str(self.out_dir)
        if out_dir == runner.work_dir or '://' in out_dir:
            return out_dir
        return osp.join(out_dir, osp.basename(runner.work_dir.rstrip(osp.sep)))

    def before_train(self, runner: Runner) -> None:
        # Local checkpoints go through the atomic backend unless the config
        # chose a backend itself.
        if (self.backend_args is None and self.file_client_args is None
                and '://' not in self._local_out_dir(runner)):
            self.backend_args = dict(backend=BACKEND_NAME)
        super().before_train(runner)

    def before_run(self, runner: Runner) -> None:
        if is_main_process():
            folders = {runner.work_dir, self._local_out_dir(runner)}
            for folder in sorted(f for f in folders if '://' not in f):
                removed, freed = remove_stale_temporaries(folder)
                if removed:
                    print_log(
                        f'removed {removed} temporary file(s) of interrupted '
                        f'saves from {folder} ({freed / 2**20:.1f} MiB)',
                        logger='current',
                        level=logging.WARNING)
            if runner.cfg.get('resume', False) and runner.cfg.get(
                    'load_from', None) is None:
                self._repair_resume_pointer(runner)
        barrier()

    def _repair_resume_pointer(self, runner: Runner) -> None:
        out_dir = self._local_out_dir(runner)
        extra = (out_dir, ) if out_dir != runner.work_dir else ()
        path, why = resolve_resume_point(runner.work_dir, self.filename_tmpl,
                                         extra)
        if why is None or path is None:
            return
        write_text_atomically(osp.join(runner.work_dir, POINTER_NAME), path)
        print_log(
            f'resume: {why}; resuming from {path}, the newest intact '
            'checkpoint in the work dir.',
            logger='current',
            level=logging.WARNING)

    # -- saving ----------------------------------------------------------

    def before_save_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        add_checksums(checkpoint)

    def _remove(self, kind: str, path: str) -> None:
        if kind == 'rmtree':
            self.file_backend.rmtree(path)
        elif self.file_backend.isfile(path):
            self.file_backend.remove(path)

    def _save_checkpoint_with_step(self, runner: Runner, step: int,
                                   meta: Dict) -> None:
        # mmengine's order is delete-then-save and a plain open() for the
        # pointer; same bookkeeping here, in the order that loses nothing.
        stale = None
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and
                                            self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                stale = self.keep_ckpt_ids.popleft()
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids',
                                           list(self.keep_ckpt_ids))
        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir,
                                                     ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir,
            ckpt_filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)
        if not is_main_process():
            return
        write_text_atomically(
            osp.join(runner.work_dir, POINTER_NAME), self.last_ckpt)
        if stale is not None and stale != step:
            path = self.file_backend.join_path(
                self.out_dir, self.filename_tmpl.format(stale))
            kind = 'rmtree' if self.file_backend.isdir(path) else 'remove'
            self._remove(kind, path)

    def _save_best_checkpoint(self, runner: Runner, metrics: Dict) -> None:
        backend, pending = self.file_backend, []
        self.file_backend = _DeferredRemovals(backend, pending)
        try:
            super()._save_best_checkpoint(runner, metrics)
        finally:
            self.file_backend = backend
        # One key indicator keeps ``best_ckpt_path``, several a dict.
        current = {
            getattr(self, 'best_ckpt_path', None),
            *getattr(self, 'best_ckpt_path_dict', {}).values()
        }
        for kind, path in pending:
            if path not in current:
                self._remove(kind, path)

    # -- loading ---------------------------------------------------------

    def after_load_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        match = KeyMatch(checkpoint_weights(checkpoint), model.state_dict())
        if match.exact:
            return
        source = runner.cfg.get('load_from', None) or 'the checkpoint'
        details = match.describe()
        if runner.cfg.get('load_strict', True):
            raise CheckpointMismatchError(
                f'{source} does not fit {type(model).__name__}: '
                f'{match.loaded} of {match.total} model tensors would load.'
                f'\n  {details}\nIs it a checkpoint of another model or '
                'config? To fine-tune from it with a new head on purpose, '
                'set load_strict=False in the config (tools: --non-strict).')
        print_log(
            f'load_strict=False: loading {source} into '
            f'{type(model).__name__}; {match.loaded} of {match.total} '
            'tensors load, these keep their initial values:\n  ' + details,
            logger='current',
            level=logging.WARNING)
