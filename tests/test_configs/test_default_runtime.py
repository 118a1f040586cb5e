"""The shipped runtime settings keep each run's records in its own folder."""
import json
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

import tests.toy_task  # noqa: F401  (registers the toy task)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY = osp.join(REPO, 'tests', 'data', 'configs', 'toy_regression.py')


@pytest.mark.parametrize('config', [
    'configs/_base_/default_runtime.py',
    'configs/psalm_yolo/psalm_yolo_model.py',
    'configs/psalm_yolo/psalm_yolo_base.py',
    'configs/rtdetr/rtdetr_r50_model.py',
    'configs/rtdetr/rtdetr_r50_coco.py',
])
def test_the_visualizer_takes_the_run_name(config):
    # A fixed name is one visualizer per process, shared by every run.
    assert 'name' not in Config.fromfile(osp.join(REPO, config)).visualizer


def test_two_runs_in_one_process_write_their_own_scalars(tmp_path):
    rates = []
    for i, lr in enumerate((0.02, 0.01)):
        cfg = Config.fromfile(TOY)
        cfg.work_dir = str(tmp_path / str(i))
        cfg.experiment_name = f'runtime_{i}'
        cfg.optim_wrapper.optimizer.lr = lr
        cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
        cfg.log_processor = dict(by_epoch=False, window_size=1)
        runner = Runner.from_cfg(cfg)
        runner.train()
        path = osp.join(runner.log_dir, 'vis_data', 'scalars.json')
        with open(path) as f:
            records = [json.loads(line) for line in f]
        lrs = {r['lr'] for r in records if 'lr' in r}
        rates.append(lrs)
    assert rates == [{0.02}, {0.01}]
