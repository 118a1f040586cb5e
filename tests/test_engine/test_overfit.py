"""--overfit-batches: config transformation, verdict, exit code."""
import os
import subprocess
import sys

import pytest
from mmengine.config import Config

from engine_plugins.engine import make_overfit_config
from engine_plugins.engine.overfit import RESULT_KEY
from tests.test_tools.test_train import REPO, TOY_CONFIG, train_tool


def test_overfit_config_uses_first_batches_without_val_or_schedule():
    cfg = make_overfit_config(Config.fromfile(TOY_CONFIG), 2, iters=50)
    dataset = cfg.train_dataloader.dataset
    assert dataset.type == 'FirstSamplesDataset'
    assert dataset.num_samples == 2 * 8  # batch size 8
    assert dataset.times == 25  # 50 iterations / 2 batches in one epoch
    assert cfg.train_dataloader.sampler.shuffle is False
    assert cfg.train_cfg.max_iters == 50
    assert cfg.val_dataloader is None and cfg.param_scheduler == []
    assert cfg.custom_hooks[-1] == dict(type='OverfitCheckHook', factor=10.0)


@pytest.mark.slow
def test_overfit_run_passes_on_a_learnable_task(tmp_path):
    runner = train_tool.main([
        TOY_CONFIG, '--work-dir',
        str(tmp_path), '--overfit-batches', '1', '--overfit-iters', '60'
    ])
    assert runner.iter == 60
    assert runner.message_hub.get_info(RESULT_KEY) is True


@pytest.mark.slow
def test_overfit_failure_exits_nonzero(tmp_path):
    # lr = 1e-7 (lr = 0 is stopped earlier by the sanity engine): the loss
    # cannot fall 10x in 10 iterations.
    proc = subprocess.run([
        sys.executable,
        os.path.join(REPO, 'tools', 'train.py'), TOY_CONFIG, '--work-dir',
        str(tmp_path), '--overfit-batches', '1', '--overfit-iters', '10',
        '--cfg-options', 'optim_wrapper.optimizer.lr=1e-7'
    ],
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert proc.returncode == 1
    assert 'FAIL (needed /10)' in proc.stdout + proc.stderr
