"""Overfit two demo images through the normal Runner: the loss falls by at
least 80% and the two images are then detected with COCO mAP50 >= 0.9."""
import os.path as osp

import pytest

from engine_plugins.datasets import write_demo_shapes
from engine_plugins.engine import make_overfit_config
from engine_plugins.utils.config_loading import build_runner, load_config

REPO = osp.dirname(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
QUICK_START = osp.join(REPO, 'configs', 'rtdetr', 'rtdetr_r18_shapes_cpu.py')
# Two images with objects (empty_ratio 0), small enough for a CPU test.
DEMO = dict(
    num_train=2,
    num_val=1,
    min_size=(112, 112),
    max_size=(128, 128),
    empty_ratio=0.0,
    max_objects=3,
    seed=5)
SCALE = (128, 128)


@pytest.mark.slow
def test_two_images_are_memorised(tmp_path):
    root = str(tmp_path / 'shapes') + '/'
    write_demo_shapes(root, **DEMO)
    cfg = load_config(QUICK_START, work_dir=str(tmp_path / 'work'))
    # No augmentation: the same two images every step.
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='Resize', scale=SCALE, keep_ratio=True),
        dict(
            type='PackDetInputs',
            meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                       'scale_factor')),
    ]
    dataset = dict(
        type='DemoShapesDataset',
        data_root=root,
        generate=DEMO,
        ann_file='annotations/train.json',
        data_prefix=dict(img='train/'),
        pipeline=pipeline)
    cfg.train_dataloader.update(
        batch_size=2, num_workers=0, persistent_workers=False,
        dataset=dataset)
    cfg.test_dataloader = dict(
        batch_size=2,
        num_workers=0,
        sampler=dict(type='DefaultSampler', shuffle=False),
        dataset=dict(dataset, test_mode=True))
    cfg.test_evaluator.ann_file = root + 'annotations/train.json'
    cfg.custom_hooks = []  # no EMA
    cfg.experiment_name = 'rtdetr_overfit'
    cfg.randomness = dict(seed=0)  # denoising noise and init
    cfg = make_overfit_config(cfg, num_batches=1, iters=300, factor=5.0)
    runner = build_runner(cfg)
    runner.train()
    hook = next(h for h in runner.hooks
                if type(h).__name__ == 'OverfitCheckHook')
    start = sum(hook.losses[:5]) / 5
    end = sum(hook.losses[-5:]) / 5
    assert end <= 0.2 * start, (start, end)
    metrics = runner.test()
    assert metrics['coco/bbox_mAP_50'] >= 0.9, metrics
