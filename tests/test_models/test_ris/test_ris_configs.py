"""Every RIS config builds and trains one iteration on CPU, then runs its
metric on a few cached validation scenes."""
import glob
import os.path as osp

import pytest
import torch

from engine_plugins.utils.config_loading import build_runner, load_config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'ris', '*.py')))


def test_all_ris_configs_are_listed():
    names = {osp.basename(p) for p in CONFIGS}
    assert {'ris_base.py', 'ris_upa8x8_cpu.py',
            'ris_upa12x12_h100.py'} <= names


def _one_iteration_cfg(path, work_dir):
    """The config as written, but batch 2, one iteration, then validation
    on 7 scenes (one per SNR); workers off; no checkpoints."""
    cfg = load_config(path, work_dir=work_dir)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].update(
            batch_size=2, num_workers=0, persistent_workers=False)
    for loader in ('val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.update(
            num_samples=len(cfg[loader].dataset.snr_db),
            cache_dir=osp.join(work_dir, 'cache'))
    cfg.train_cfg.update(max_iters=1, val_interval=1)
    cfg.default_hooks.checkpoint = None
    cfg.visualizer.vis_backends = [dict(type='LocalVisBackend')]
    cfg.experiment_name = 'cfg_' + osp.splitext(osp.basename(path))[0]
    return cfg


@pytest.mark.slow
@pytest.mark.parametrize(
    'path', CONFIGS, ids=[osp.relpath(p, REPO) for p in CONFIGS])
def test_config_trains_one_iteration_and_evaluates(path, tmp_path):
    cfg = _one_iteration_cfg(path, str(tmp_path))
    runner = build_runner(cfg)
    before = [p.detach().clone() for p in runner.model.parameters()]
    runner.train()
    after = list(runner.model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(after, before))
    loss = runner.message_hub.get_scalar('train/loss').current()
    assert torch.isfinite(torch.tensor(loss)) and loss > 0
    scalars = runner.message_hub.log_scalars
    for key in ('val/ris/val_loss', 'val/ris/rmse_network',
                'val/ris/rmse_music', 'val/ris/rmse_sqrt_crb'):
        assert key in scalars, sorted(scalars)
    assert osp.isdir(osp.join(str(tmp_path), 'cache'))


@pytest.mark.slow
def test_ris_mode_trains_one_iteration_and_evaluates(tmp_path):
    """The quick start seen through a 4x4 RIS with 12 phase profiles: the
    data, the model and the metric all use the 12-dim effective array."""
    path = osp.join(REPO, 'configs', 'ris', 'ris_upa8x8_cpu.py')
    cfg = _one_iteration_cfg(path, str(tmp_path))
    geometry = dict(rows=4, cols=4, spacing=0.5, ris_measurements=12)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.geometry = geometry
    for part in ('model', 'val_evaluator', 'test_evaluator'):
        cfg[part].geometry = geometry
    cfg.experiment_name = 'cfg_ris_mode'
    runner = build_runner(cfg)
    runner.train()
    assert runner.model.dim == 12
    batch = next(iter(runner.train_dataloader))
    assert batch['inputs'].shape[1:] == (2, 12, 12)
    scalars = runner.message_hub.log_scalars
    assert 'val/ris/rmse_sqrt_crb' in scalars, sorted(scalars)
