"""Every PSALM YOLO config builds and trains one iteration on CPU, then
evaluates, with its own pipelines and model, on a few demo images."""
import glob
import os.path as osp

import pytest
import torch
from mmcv.transforms import Compose
from mmengine.registry import init_default_scope

from engine_plugins.datasets import write_demo_shapes
from engine_plugins.registry import DATASETS
from engine_plugins.utils.config_loading import build_runner, load_config
from tests.test_configs.one_iteration import demo_dataset, one_iteration_cfg

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(
    glob.glob(osp.join(REPO, 'configs', 'psalm_yolo', '*.py')) +
    [osp.join(REPO, 'configs', 'psalm_yolo_h100.py')])
# psalm_yolo_model.py holds no data: the configs built on it are tested.
CONFIGS = [path for path in CONFIGS if not path.endswith('_model.py')]
DEMO = dict(num_train=4, num_val=2, seed=1)


@pytest.fixture(scope='module')
def demo_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('psalm_configs') / 'shapes') + '/'
    write_demo_shapes(root, **DEMO)
    return root


def _adapt(cfg):
    cfg.model.fusion.num_classes = 3  # the demo classes
    for hook in cfg.custom_hooks:
        if hook.type == 'CloseMosaicHook':
            hook.num_last_epochs = 0  # train this iteration with mosaic


@pytest.mark.slow
@pytest.mark.parametrize(
    'path', CONFIGS, ids=[osp.relpath(p, REPO) for p in CONFIGS])
def test_config_trains_one_iteration_and_evaluates(path, demo_root, tmp_path):
    cfg = one_iteration_cfg(path, demo_root, str(tmp_path), DEMO, _adapt)
    runner = build_runner(cfg)
    before = [p.detach().clone() for p in runner.model.parameters()]
    metrics = runner.train() and runner.message_hub.get_info('val_metrics')
    after = list(runner.model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(after, before))
    loss = runner.message_hub.get_scalar('train/loss').current()
    assert torch.isfinite(torch.tensor(loss)) and loss > 0
    # CocoMetric ran on the demo val images (an untrained model scores
    # ~0, but the keys must be there).
    scalars = runner.message_hub.log_scalars
    assert 'val/coco/bbox_mAP_50' in scalars, sorted(scalars)
    del metrics


@pytest.mark.parametrize(
    'path', CONFIGS, ids=[osp.relpath(p, REPO) for p in CONFIGS])
def test_stage2_and_test_pipelines_give_network_sized_images(path, demo_root):
    """The close-mosaic pipeline and the test pipeline are not run by the
    one-iteration test above; both must give ``img_scale`` images."""
    init_default_scope('engine_plugins')
    cfg = load_config(path)
    for pipeline, split in ((cfg.train_pipeline_stage2, 'train'),
                            (cfg.test_pipeline, 'val')):
        dataset = dict(type='DemoShapesDataset', pipeline=[])
        demo_dataset(dataset, demo_root, split, DEMO)
        data = DATASETS.build(dataset)
        sample = Compose(pipeline)(data[0])
        height, width = sample['inputs'].shape[-2:]
        assert (width, height) == tuple(cfg.img_scale)
