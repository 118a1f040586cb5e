"""EpochSeededDataHook: a run resumed at an epoch boundary repeats the
uninterrupted run bit for bit, with random augmentation in persistent
data-loader workers."""
import uuid

import numpy as np
import pytest
import torch

from engine_plugins.engine.hooks.epoch_seeded_data_hook import epoch_seed
from engine_plugins.utils.config_loading import build_runner, load_config
from tests.test_configs.one_iteration import demo_dataset

QUICK_START = 'configs/psalm_yolo/psalm_yolo_n_shapes_cpu.py'


def test_epoch_seed_depends_on_every_input():
    seeds = {
        epoch_seed(s, e, r)
        for s in (0, 1)
        for e in (0, 1, 2)
        for r in (0, 1)
    }
    assert len(seeds) == 12
    assert epoch_seed(7, 3, 0) == epoch_seed(7, 3, 0)
    assert all(0 <= s < 2**63 for s in seeds)


def _quick_start_cfg(work_dir, root, data_hook: bool = True):
    """The YOLO CPU quick start, small: 16 images, batch 4, 2 persistent
    workers, 4 epochs (mosaic in the first three), a checkpoint per
    epoch."""
    cfg = load_config(QUICK_START, work_dir=str(work_dir))
    demo = dict(num_train=16, num_val=4, seed=0)
    demo_dataset(cfg.train_dataloader.dataset, root, 'train', demo)
    cfg.train_dataloader.update(
        batch_size=4, num_workers=2, persistent_workers=True)
    cfg.train_cfg.update(max_epochs=4, val_interval=100)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.test_cfg = cfg.test_dataloader = cfg.test_evaluator = None
    for hook in cfg.custom_hooks:
        if hook.type == 'CloseMosaicHook':
            hook.num_last_epochs = 1
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', interval=1, max_keep_ckpts=-1)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.randomness = dict(seed=0)
    if not data_hook:
        cfg.default_hooks.data_seed = None
    cfg.experiment_name = f'resume_{uuid.uuid4().hex[:8]}'
    return cfg


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _resume_matches(tmp_path, data_hook: bool) -> bool:
    root = str(tmp_path / 'data') + '/'
    full = tmp_path / f'full_{data_hook}'
    build_runner(_quick_start_cfg(full, root, data_hook)).train()
    resumed_dir = tmp_path / f'resumed_{data_hook}'
    cfg = _quick_start_cfg(resumed_dir, root, data_hook)
    cfg.resume = True
    cfg.load_from = str(full / 'epoch_2.pth')
    runner = build_runner(cfg)
    runner.train()
    assert runner.epoch == 4
    a = torch.load(full / 'epoch_4.pth')
    b = torch.load(resumed_dir / 'epoch_4.pth')
    # The runs trained: the last weights differ from epoch 2's.
    assert not _same(a['state_dict'],
                     torch.load(full / 'epoch_2.pth')['state_dict'])
    return (_same(a['state_dict'], b['state_dict'])
            and _same(a['ema_state_dict'], b['ema_state_dict']))


@pytest.mark.slow
def test_resumed_quick_start_is_bit_exact(tmp_path):
    assert _resume_matches(tmp_path, data_hook=True)


@pytest.mark.slow
def test_without_the_hook_the_resumed_run_differs(tmp_path):
    """The control: without the hook, persistent workers carry their
    random state from epoch to epoch in the uninterrupted run but start
    afresh in the resumed one, so the third epoch's mosaics differ."""
    assert not _resume_matches(tmp_path, data_hook=False)


def test_workers_get_numpy_seeds_that_differ_by_epoch(tmp_path):
    """Two epochs of a 2-worker persistent loader under the hook draw
    different numpy numbers; the same epoch in two runs draws the same."""
    from engine_plugins.engine.hooks import EpochSeededDataHook

    class Draws(torch.utils.data.Dataset):

        def __len__(self):
            return 4

        def __getitem__(self, idx):
            return torch.tensor(np.random.randint(0, 2**31))

    class FakeRunner:
        seed = 5
        epoch = 0
        cfg = {}

        def __init__(self):
            self.train_dataloader = torch.utils.data.DataLoader(
                Draws(), batch_size=2, num_workers=2, persistent_workers=True)

    def run_epochs(n):
        runner, hook, out = FakeRunner(), EpochSeededDataHook(), []
        hook.before_train(runner)
        for epoch in range(n):
            runner.epoch = epoch
            hook.before_train_epoch(runner)
            out.append(torch.cat(list(runner.train_dataloader)).tolist())
        return out

    first, second = run_epochs(2), run_epochs(2)
    assert first == second
    assert first[0] != first[1]
