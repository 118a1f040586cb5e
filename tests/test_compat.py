"""Each stack fix: engine_plugins.compat, applied explicitly, and the
extension points that replaced import-time patches."""
import os
import pickle
from unittest import mock

import pytest
import torch
import torch.nn as nn
from mmengine.fileio.backends.local_backend import LocalBackend
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.optim import AmpOptimWrapper
from mmengine.runner.checkpoint import _load_checkpoint

from engine_plugins.compat import apply_runtime_fixes
from engine_plugins.engine import cpu_distributed
from engine_plugins.engine.cpu_distributed import (
    PortableDistributedDataParallel, prepare_distributed)
from engine_plugins.engine.optim_wrappers import PortableAmpOptimWrapper

apply_runtime_fixes()


class _RunsCode:
    """Unpickling this calls os.getcwd: stands in for any code."""

    def __reduce__(self):
        return (os.getcwd, ())


class _HistoryBufferGetattrAbuse:
    """Asks the unpickler for getattr on something other than
    HistoryBuffer: the builtins module through getattr.__self__."""

    def __reduce__(self):
        return (getattr, (getattr, '__self__'))


def _message_hub_checkpoint(path):
    hub = MessageHub.get_instance('compat_test_hub')
    for value in (3.0, 1.0, 2.0):
        hub.update_scalar('train/loss', value)
    hub.update_info('iter', 3)
    torch.save(
        dict(
            state_dict=nn.Linear(2, 2).state_dict(),
            message_hub=hub.state_dict(),
            meta=dict(iter=3)), path)


def test_mmengine_checkpoint_loads_weights_only(tmp_path):
    path = str(tmp_path / 'ckpt.pth')
    _message_hub_checkpoint(path)
    # torch's default is weights_only=True; no flag is passed here.
    ckpt = torch.load(path)
    buffer = ckpt['message_hub']['log_scalars']['train/loss']
    assert isinstance(buffer, HistoryBuffer)
    assert buffer.mean() == pytest.approx(2.0)
    assert buffer.min() == 1.0 and buffer.current() == 2.0
    # and through mmengine's loader, the path Runner.resume uses.
    assert _load_checkpoint(path)['meta']['iter'] == 3


@pytest.mark.parametrize(
    'payload', [_RunsCode(), _HistoryBufferGetattrAbuse()])
def test_untrusted_objects_are_refused_naming_the_file(tmp_path, payload):
    path = str(tmp_path / 'evil.pth')
    torch.save(dict(state_dict={}, extra=payload), path)
    with pytest.raises(pickle.UnpicklingError, match='evil.pth'):
        _load_checkpoint(path)


def test_plain_weights_file_loads(tmp_path):
    path = str(tmp_path / 'weights.pth')
    weights = nn.Linear(3, 1).state_dict()
    torch.save(weights, path)
    loaded = _load_checkpoint(path)
    torch.testing.assert_close(loaded['weight'], weights['weight'])


def test_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='absent.pth'):
        _load_checkpoint(str(tmp_path / 'absent.pth'))


def test_importing_leaves_mmengines_local_backend_alone(tmp_path):
    """Atomic writes are a backend of their own; mmengine's plain local
    backend, which other libraries use, is unchanged."""
    assert LocalBackend.put is LocalBackend.__dict__['put']
    assert LocalBackend.put.__module__ == 'mmengine.fileio.backends.' \
        'local_backend'


@pytest.mark.skipif(torch.cuda.is_available(), reason='CPU behaviour')
def test_portable_amp_optim_wrapper_runs_bf16_on_cpu():
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    wrapper = PortableAmpOptimWrapper(
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    assert wrapper.cast_dtype == torch.bfloat16
    before = model.weight.detach().clone()
    with wrapper.optim_context(model):
        out = model(torch.randn(3, 4))
        assert out.dtype == torch.bfloat16
        loss = out.float().pow(2).mean()
    wrapper.update_params(loss)
    assert not torch.equal(before, model.weight)
    # The pass-through scaler keeps checkpoints loadable across devices.
    state = wrapper.state_dict()
    wrapper.load_state_dict(state)


@pytest.mark.skipif(torch.cuda.is_available(), reason='CPU behaviour')
def test_amp_fp16_on_cpu_is_refused_clearly():
    model = nn.Linear(2, 2)
    with pytest.raises(ValueError, match='bfloat16'):
        PortableAmpOptimWrapper(
            dtype='float16',
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1))


@pytest.mark.skipif(torch.cuda.is_available(), reason='CPU behaviour')
def test_amp_optim_wrapper_resolves_to_the_portable_one_in_our_scope():
    from mmengine.registry import OPTIM_WRAPPERS as ROOT
    from mmengine.registry import DefaultScope
    model = nn.Linear(2, 2)
    cfg = dict(type='AmpOptimWrapper',
               optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    with DefaultScope.overwrite_default_scope('engine_plugins'):
        assert isinstance(ROOT.build(dict(cfg)), PortableAmpOptimWrapper)
    # mmengine's own class is unchanged: it still needs an accelerator.
    with pytest.raises(AssertionError):
        AmpOptimWrapper(optimizer=cfg['optimizer'])


def test_ddp_wrapper_accepts_cpu_module_with_device_ids(tmp_path):
    import torch.distributed as dist
    dist.init_process_group(
        'gloo', init_method=f'file://{tmp_path}/store', rank=0, world_size=1)
    try:
        # The runner passes device_ids=[LOCAL_RANK]; torch rejects that for
        # CPU modules, so the portable wrapper drops it.
        ddp = PortableDistributedDataParallel(
            module=nn.Linear(2, 1), device_ids=[0])
        assert ddp.device_ids is None
        assert ddp(torch.ones(1, 2)).shape == (1, 1)
    finally:
        dist.destroy_process_group()


def test_distributed_runs_get_the_portable_wrapper_through_the_registry():
    from mmengine.config import Config
    from mmengine.registry import MODEL_WRAPPERS, DefaultScope
    cfg = Config(dict(launcher='pytorch', find_unused_parameters=True))
    with mock.patch.object(cpu_distributed, 'is_distributed',
                           return_value=True):
        prepare_distributed(cfg)  # the group exists: nothing to start
    assert cfg.model_wrapper_cfg == dict(
        type='MMDistributedDataParallel', broadcast_buffers=False,
        find_unused_parameters=True)
    # The Runner builds it from mmengine's root registry, in our scope.
    with DefaultScope.overwrite_default_scope('engine_plugins'):
        with MODEL_WRAPPERS.switch_scope_and_registry(
                'engine_plugins') as registry:
            assert registry.get('MMDistributedDataParallel') is \
                PortableDistributedDataParallel
    # a single-process run is left alone
    cfg = Config(dict(launcher='none'))
    prepare_distributed(cfg)
    assert 'model_wrapper_cfg' not in cfg


IMPORT_CHECK = """
import pickle
import mmengine.dist.utils as dist_utils
import torch
from mmengine.fileio.backends.local_backend import LocalBackend
from mmengine.model import MMDistributedDataParallel
from mmengine.optim import AmpOptimWrapper
from mmengine.registry import Registry
from mmengine.runner.checkpoint import CheckpointLoader
before = dict(
    build=Registry.build, put=LocalBackend.put,
    amp=AmpOptimWrapper.__init__, ddp=MMDistributedDataParallel.__init__,
    init_dist=dist_utils._init_dist_pytorch,
    local=CheckpointLoader._schemes[''],
    safe=list(torch.serialization.get_safe_globals()))
import engine_plugins
import engine_plugins.engine, engine_plugins.models, engine_plugins.datasets
after = dict(
    build=Registry.build, put=LocalBackend.put,
    amp=AmpOptimWrapper.__init__, ddp=MMDistributedDataParallel.__init__,
    init_dist=dist_utils._init_dist_pytorch,
    local=CheckpointLoader._schemes[''],
    safe=list(torch.serialization.get_safe_globals()))
changed = sorted(k for k in before if before[k] != after[k])
print('changed:', changed)
engine_plugins.compat.apply_runtime_fixes()
print('applied:', Registry.build is not before['build'],
      CheckpointLoader._schemes[''] is not before['local'])
"""


def test_importing_the_package_changes_nothing_in_mmengine_or_torch():
    """Another library in the same process sees mmengine and torch as they
    are; the fixes apply only when asked for."""
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, '-c', IMPORT_CHECK],
                          capture_output=True, text=True, timeout=300,
                          cwd=os.path.dirname(os.path.dirname(
                              os.path.abspath(__file__))))
    assert proc.returncode == 0, proc.stderr
    assert 'changed: []' in proc.stdout, proc.stdout
    assert 'applied: True True' in proc.stdout
