"""SafeCheckpointHook: nothing lost on a kill or a full disk, the resume
point repaired, leftovers cleaned, strict loading, and argument typos
caught when the hook is built."""
import errno
import glob
import os
import os.path as osp
import random
import signal
import subprocess
import sys
import time
from unittest import mock

import pytest
import torch
from mmengine.registry import DefaultScope
from mmengine.runner.checkpoint import _load_checkpoint

from engine_plugins.engine.checkpoints import (CheckpointMismatchError,
                                               is_loadable, verify_checksums)
from engine_plugins.engine.hooks import SafeCheckpointHook
from engine_plugins.engine.hooks import \
    safe_checkpoint_hook as safe_hook_module
from engine_plugins.registry import HOOKS
from engine_plugins.utils.build_errors import UnknownArgumentError
from tests.tool_loading import load_tool

REPO = osp.dirname(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
TOY_CONFIG = osp.join(REPO, 'tests', 'data', 'configs', 'toy_regression.py')

train_tool = load_tool('train')
test_tool = load_tool('test')
EVERY_ITER = ('default_hooks.checkpoint.interval=1',
              'default_hooks.checkpoint.max_keep_ckpts=1')


def _train(work_dir, *extra, options=()):
    args = [TOY_CONFIG, '--work-dir', str(work_dir), *extra]
    if options:
        args += ['--cfg-options', *options]
    return train_tool.main(args)


class _Messages:
    """Records what the hook logs (runs in one test share a log folder
    when they start within the same second)."""

    def __init__(self, module) -> None:
        self.texts = []
        self._patch = mock.patch.object(module, 'print_log', self._record)

    def _record(self, msg, *args, **kwargs) -> None:
        self.texts.append(str(msg))

    def __enter__(self) -> '_Messages':
        self._patch.start()
        return self

    def __exit__(self, *exc) -> None:
        self._patch.stop()

    def __str__(self) -> str:
        return '\n'.join(self.texts)


def test_checkpoint_hook_resolves_to_the_safe_hook_in_our_scope():
    with DefaultScope.overwrite_default_scope('engine_plugins'):
        from mmengine.registry import HOOKS as ROOT_HOOKS
        hook = ROOT_HOOKS.build(dict(type='CheckpointHook', interval=2))
    assert isinstance(hook, SafeCheckpointHook)


def test_misspelled_argument_fails_at_build_with_suggestion():
    with pytest.raises(
            UnknownArgumentError, match="'intervl'; did you mean 'interval'"):
        HOOKS.build(dict(type='CheckpointHook', intervl=1))
    with pytest.raises(UnknownArgumentError, match="'max_keep_ckpt'"):
        HOOKS.build(dict(type='CheckpointHook', max_keep_ckpt=1))


def test_saved_checkpoints_carry_verified_checksums(tmp_path):
    _train(tmp_path, options=EVERY_ITER)
    ckpt = torch.load(tmp_path / 'iter_8.pth')
    record = ckpt['meta']['integrity']
    assert set(record['state_dict']) == set(ckpt['state_dict'])
    verify_checksums(ckpt, 'iter_8.pth')
    # max_keep_ckpts=1 keeps one file, and the pointer names it.
    assert sorted(glob.glob(str(tmp_path / '*.pth'))) == [
        str(tmp_path / 'iter_8.pth'),
        str(tmp_path / 'weights_rank0.pth')
    ]
    assert (tmp_path / 'last_checkpoint').read_text() == str(tmp_path /
                                                             'iter_8.pth')


def _checkpoint_hook(runner):
    return next(h for h in runner.hooks if isinstance(h, SafeCheckpointHook))


def test_local_checkpoints_use_the_atomic_backend_unless_chosen(tmp_path):
    runner = _train(tmp_path / 'default')
    assert _checkpoint_hook(runner).backend_args == dict(
        backend='atomic_local')
    assert type(_checkpoint_hook(runner).file_backend).__name__ == \
        'AtomicLocalBackend'
    runner = _train(
        tmp_path / 'chosen',
        options=['default_hooks.checkpoint.backend_args.backend=local'])
    assert _checkpoint_hook(runner).backend_args == dict(backend='local')
    assert type(_checkpoint_hook(runner).file_backend).__name__ == \
        'LocalBackend'
    assert is_loadable(str(tmp_path / 'chosen' / 'iter_8.pth'))


def test_full_disk_keeps_the_previous_checkpoint(tmp_path):
    """The third save hits ENOSPC: the error names the file and the space;
    with max_keep_ckpts=1 the second checkpoint is still there, intact,
    and the pointer still names it."""
    real_fsync = os.fsync
    calls = []

    def fsync(fd):
        # One checkpoint write + one pointer write per iteration.
        calls.append(fd)
        if len(calls) == 5:
            raise OSError(errno.ENOSPC, 'No space left on device')
        return real_fsync(fd)

    with mock.patch('os.fsync', fsync):
        with pytest.raises(OSError) as info:
            _train(tmp_path, options=EVERY_ITER)
    message = str(info.value)
    assert 'iter_3.pth' in message and 'MiB free' in message
    assert 'needs' in message
    assert is_loadable(str(tmp_path / 'iter_2.pth'))
    assert not (tmp_path / 'iter_3.pth').exists()
    assert (tmp_path / 'last_checkpoint').read_text() == str(tmp_path /
                                                             'iter_2.pth')
    assert not [n for n in os.listdir(tmp_path) if n.endswith('.tmp')]
    # ...and the run resumes from it.
    runner = _train(tmp_path, '--resume', options=EVERY_ITER)
    assert runner.iter == 8


@pytest.mark.parametrize('pointer', ['', 'missing', 'truncated'])
def test_resume_repairs_a_bad_pointer(tmp_path, pointer):
    _train(
        tmp_path,
        options=('train_cfg.max_iters=6',
                 'default_hooks.checkpoint.interval=2'))
    newest = tmp_path / 'iter_6.pth'
    if pointer == 'truncated':
        newest.write_bytes(newest.read_bytes()[:1000])
        (tmp_path / 'last_checkpoint').write_text(str(newest))
    elif pointer == 'missing':
        (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'x.pth'))
    else:
        (tmp_path / 'last_checkpoint').write_text('')
    with _Messages(safe_hook_module) as log:
        runner = _train(tmp_path, '--resume')
    assert runner.iter == 8
    log = str(log)
    resumed_from = 'iter_4.pth' if pointer == 'truncated' else 'iter_6.pth'
    assert f'{resumed_from}, the newest intact checkpoint' in log
    reason = {
        '': 'last_checkpoint is empty',
        'missing': 'the file does not exist',
        'truncated': 'truncated or damaged'
    }[pointer]
    assert reason in log


def test_resume_with_no_intact_checkpoint_says_what_to_do(tmp_path):
    _train(tmp_path, options=('default_hooks.checkpoint.interval=4', ))
    for name in ("iter_4.pth", "iter_8.pth"):
        (tmp_path / name).write_bytes(b'')
    with pytest.raises(RuntimeError, match='no intact checkpoint is left'):
        _train(tmp_path, '--resume')


def test_stale_temporaries_are_removed_at_start(tmp_path):
    _train(tmp_path, options=('train_cfg.max_iters=4', ))
    stale = [
        tmp_path / '.iter_5.pth.a1b2c3.tmp',
        tmp_path / '.last_checkpoint.zz9_x.tmp'
    ]
    for path in stale:
        path.write_bytes(b'\0' * 4096)
    keep = tmp_path / 'notes.tmp'  # not a name the writer makes
    keep.write_text('mine')
    with _Messages(safe_hook_module) as log:
        _train(tmp_path, '--resume')
    assert not any(p.exists() for p in stale)
    assert keep.exists()
    assert 'removed 2 temporary file(s)' in str(log)


def _other_model_checkpoint(tmp_path, hidden: int):
    other = tmp_path / f'other_{hidden}'
    _train(
        other,
        options=(f'model.hidden={hidden}',
                 'default_hooks.checkpoint.interval=8'))
    return str(other / 'iter_8.pth')


def test_test_tool_refuses_a_checkpoint_of_another_model(tmp_path):
    ckpt = _other_model_checkpoint(tmp_path, hidden=8)
    with pytest.raises(CheckpointMismatchError) as info:
        test_tool.main([TOY_CONFIG, ckpt, '--work-dir', str(tmp_path / 't')])
    message = str(info.value)
    assert ckpt in message
    # ToyRegressor(hidden=16): net.0 (16x4, 16), net.2 (1x16, 1).
    assert '3 with another shape' in message
    assert 'net.0.weight (8, 4) vs model (16, 4)' in message
    assert '1 of 4 model tensors would load' in message
    assert '--non-strict' in message


def test_non_strict_loads_what_fits_and_lists_the_rest(tmp_path):
    ckpt = _other_model_checkpoint(tmp_path, hidden=8)
    with _Messages(safe_hook_module) as log:
        metrics = test_tool.main([
            TOY_CONFIG, ckpt, '--work-dir',
            str(tmp_path / 't'), '--non-strict'
        ])
    assert 'toy/mse' in metrics
    log = str(log)
    assert 'these keep their initial values' in log
    assert 'net.0 (2)' in log and 'net.2 (1)' in log


def test_load_from_with_unrelated_keys_is_refused(tmp_path):
    path = tmp_path / 'foreign.pth'
    torch.save(
        dict(
            state_dict=dict(
                backbone_conv=torch.zeros(3), head_fc=torch.zeros(2))), path)
    with pytest.raises(CheckpointMismatchError) as info:
        _train(tmp_path / 'run', options=(f'load_from={path}', ))
    message = str(info.value)
    assert '4 missing from the checkpoint: net.0 (2)' in message
    assert '2 in the checkpoint but not in the model' in message


def _kill_loop_env():
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=REPO)
    return env


@pytest.mark.slow
def test_sigkill_at_random_points_never_loses_the_run(tmp_path):
    """Train with a checkpoint every iteration (24 MB each, one kept) and
    kill the process with SIGKILL at random moments, 6 times; every restart
    resumes, and the run finally completes. After every kill at least one
    intact checkpoint exists once the first was written, and no .pth file
    in the work dir is ever damaged."""
    rng = random.Random(0)
    options = [
        'model.hidden=1000000', 'optim_wrapper.optimizer.lr=1e-6',
        'train_cfg.max_iters=40', 'train_cfg.val_interval=1000', *EVERY_ITER,
        'default_hooks.logger.interval=1'
    ]
    cmd = [
        sys.executable,
        osp.join(REPO, 'tools', 'train.py'), TOY_CONFIG, '--work-dir',
        str(tmp_path), '--cfg-options', *options
    ]
    started_once = False
    for kill in range(6):
        args = cmd + (['--resume'] if started_once else [])
        proc = subprocess.Popen(
            args,
            env=_kill_loop_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            if glob.glob(str(tmp_path / 'iter_*.pth')):
                break
            time.sleep(0.05)
        assert proc.poll() is None, f'run ended early (rc {proc.returncode})'
        started_once = True
        time.sleep(rng.uniform(0.0, 1.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        checkpoints = glob.glob(str(tmp_path / 'iter_*.pth'))
        assert checkpoints, f'kill {kill}: no checkpoint left'
        for path in checkpoints:
            assert is_loadable(path), f'kill {kill}: {path} damaged'
    final = subprocess.run(
        cmd + ['--resume'], env=_kill_loop_env(), capture_output=True)
    assert final.returncode == 0, final.stderr.decode()[-2000:]
    last = _load_checkpoint(str(tmp_path / 'iter_40.pth'))
    assert last['meta']['iter'] == 40
    assert not [n for n in os.listdir(tmp_path) if n.endswith('.tmp')]
