"""Overfit two demo images through the normal Runner, for any detection
quick-start config: the shared set-up and verdict of the detectors'
overfit tests."""
from engine_plugins.datasets import write_demo_shapes
from engine_plugins.engine import make_overfit_config
from engine_plugins.utils.config_loading import build_runner, load_config

# Two images with objects (empty_ratio 0), small enough for a CPU test.
DEMO = dict(
    num_train=2,
    num_val=1,
    min_size=(112, 112),
    max_size=(128, 128),
    empty_ratio=0.0,
    max_objects=3,
    seed=5)


def overfit_two_images(config: str, tmp_path, pipeline: list, name: str,
                       iters: int = 300):
    """Train ``config`` for ``iters`` steps on the same two images (no
    augmentation beyond ``pipeline``, no EMA) and test on them.

    Returns:
        The mean loss of the first and of the last 5 steps, and the test
        metrics.
    """
    root = str(tmp_path / 'shapes') + '/'
    write_demo_shapes(root, **DEMO)
    cfg = load_config(config, work_dir=str(tmp_path / 'work'))
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
    cfg.custom_hooks = []  # no EMA, no pipeline switch
    cfg.experiment_name = name
    cfg.randomness = dict(seed=0)
    cfg = make_overfit_config(cfg, num_batches=1, iters=iters, factor=5.0)
    runner = build_runner(cfg)
    runner.train()
    hook = next(h for h in runner.hooks
                if type(h).__name__ == 'OverfitCheckHook')
    start = sum(hook.losses[:5]) / 5
    end = sum(hook.losses[-5:]) / 5
    return start, end, runner.test()
