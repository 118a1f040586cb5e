"""Every audio config builds and runs one iteration on CPU."""
import glob
import itertools
import math
import os.path as osp

import pytest
import torch

from engine_plugins.datasets.audio import make_audio_demo_data
from engine_plugins.utils import build_runner, load_config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'audio', '*.py')))
_IDS = itertools.count()


def test_all_audio_configs_are_listed():
    assert [osp.basename(c) for c in CONFIGS] == [
        'dualffn_3b_lora_bf16.py', 'dualffn_audio_base.py',
        'dualffn_tiny_lora_cpu.py'
    ]


@pytest.mark.slow
@pytest.mark.parametrize('config', CONFIGS, ids=osp.basename)
def test_config_runs_one_iteration(tmp_path, config):
    manifest = make_audio_demo_data(str(tmp_path / 'data'), num_samples=4)
    options = {
        'train_dataloader.dataset.manifest': manifest,
        'train_cfg.max_iters': 1,
        'experiment_name': f'audio_cfg_{next(_IDS)}',
    }
    if '3b' in config:
        # The 3B network does not fit this test's time; its shapes are
        # checked on the meta device (test_audio_lm.py). Everything else
        # (bf16 AMP, accumulation, LoRA groups, schedule) runs as is.
        options['model.size'] = 'tiny'
    cfg = load_config(config, options, work_dir=str(tmp_path / 'work'))
    runner = build_runner(cfg)
    runner.train()
    assert runner.iter == 1
    loss = runner.message_hub.get_scalar('train/loss').current()
    assert math.isfinite(loss) and loss > 0
    if '3b' in config:
        assert runner.optim_wrapper.cast_dtype == torch.bfloat16
        assert runner.optim_wrapper._accumulative_counts == 8
