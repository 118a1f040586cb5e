"""`mim train` / `mim test` against the installed package (regular install
from tools/install.sh)."""
import os
import subprocess

import pytest
import torch

from tests.test_tools.test_train import REPO, TOY_CONFIG


def _mim(*args, cwd):
    # PYTHONPATH makes tests.toy_task (the config's custom import) findable;
    # mim itself runs the installed engine_plugins/.mim/tools scripts.
    env = dict(os.environ, PYTHONPATH=REPO)
    return subprocess.run(['mim', *args, '--gpus', '0', '-y'],
                          cwd=cwd,
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=300)


@pytest.mark.slow
def test_mim_train_then_test(tmp_path):
    import engine_plugins
    mim_dir = os.path.join(
        os.path.dirname(engine_plugins.__file__), '.mim', 'tools')
    assert os.path.isfile(os.path.join(mim_dir, 'train.py')), mim_dir
    train = _mim(
        'train',
        'engine_plugins',
        TOY_CONFIG,
        '--work-dir',
        str(tmp_path),
        cwd=tmp_path)
    assert train.returncode == 0, train.stdout[-2000:] + train.stderr[-2000:]
    ckpt = tmp_path / 'iter_8.pth'
    assert torch.load(ckpt)['meta']['iter'] == 8

    test = _mim(
        'test',
        'engine_plugins',
        TOY_CONFIG,
        '--checkpoint',
        str(ckpt),
        '--work-dir',
        str(tmp_path / 'test'),
        cwd=tmp_path)
    assert test.returncode == 0, test.stdout[-2000:] + test.stderr[-2000:]
    assert 'toy/mse:' in test.stdout + test.stderr
