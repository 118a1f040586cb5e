"""Every RT-DETR config builds and trains one iteration on CPU, then
evaluates with CocoMetric, with its own pipelines and model, on a few demo
images; the 1920x1080 config keeps the aspect ratio and pads to 32."""
import glob
import os.path as osp

import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmengine.registry import init_default_scope

from engine_plugins.datasets import write_demo_shapes
from engine_plugins.registry import MODELS
from engine_plugins.utils.config_loading import build_runner, load_config
from tests.test_configs.one_iteration import one_iteration_cfg

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'rtdetr', '*.py')))
# rtdetr_r50_model.py holds no data: the configs built on it are tested.
CONFIGS = [path for path in CONFIGS if not path.endswith('_model.py')]
DEMO = dict(num_train=4, num_val=2, seed=1)


@pytest.fixture(scope='module')
def demo_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('rtdetr_configs') / 'shapes') + '/'
    write_demo_shapes(root, **DEMO)
    return root


def _adapt(cfg):
    cfg.model.criterion.num_classes = 3  # the demo classes
    cfg.model.backbone.init_cfg = None  # no ImageNet download in tests


@pytest.mark.slow
@pytest.mark.parametrize(
    'path', CONFIGS, ids=[osp.relpath(p, REPO) for p in CONFIGS])
def test_config_trains_one_iteration_and_evaluates(path, demo_root, tmp_path):
    cfg = one_iteration_cfg(path, demo_root, str(tmp_path), DEMO, _adapt)
    runner = build_runner(cfg)
    before = [p.detach().clone() for p in runner.model.parameters()]
    runner.train()
    after = list(runner.model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(after, before))
    loss = runner.message_hub.get_scalar('train/loss').current()
    assert np.isfinite(loss) and loss > 0
    # Every decoder layer, the encoder and the denoising groups are scored.
    scalars = runner.message_hub.log_scalars
    layers = cfg.model.decoder.num_layers
    for key in [
            'loss_vfl', 'enc_loss_giou', 'dn_loss_bbox',
            f'd{layers - 2}.dn_loss_vfl'
    ]:
        assert f'train/{key}' in scalars, sorted(scalars)
    assert f'train/d{layers - 1}.loss_vfl' not in scalars
    assert 'val/coco/bbox_mAP_50' in scalars, sorted(scalars)


def test_h100_config_keeps_aspect_and_pads_to_32():
    init_default_scope('engine_plugins')
    cfg = load_config(
        osp.join(REPO, 'configs', 'rtdetr', 'rtdetr_r50_1920x1080_h100.py'))
    assert cfg.train_dataloader.batch_size == 16
    assert cfg.optim_wrapper.type == 'AmpGradSanityOptimWrapper'
    assert cfg.optim_wrapper.dtype == 'float16'
    assert cfg.train_cfg.max_epochs == 72
    # A 960x540 frame is resized to 1920x1080 and padded to 1920x1088.
    pipeline = Compose([
        t for t in cfg.test_pipeline
        if t['type'] not in ('LoadImageFromFile', 'LoadAnnotations')
    ])
    sample = pipeline(
        dict(
            img=np.zeros((540, 960, 3), np.uint8),
            img_shape=(540, 960),
            ori_shape=(540, 960),
            img_id=0,
            img_path='frame.jpg'))
    assert tuple(sample['inputs'].shape[-2:]) == (1080, 1920)
    preprocessor = MODELS.build(cfg.model.data_preprocessor)
    batch = preprocessor(
        dict(inputs=[sample['inputs']], data_samples=[sample['data_samples']]))
    assert tuple(batch['inputs'].shape[-2:]) == (1088, 1920)
