"""A config as written, but on a few demo images for one iteration: the
shared set-up of the per-task config tests."""
import os.path as osp
from typing import Callable, Dict

from engine_plugins.utils.config_loading import load_config


def demo_dataset(dataset: dict, root: str, split: str, demo: Dict) -> None:
    """Point a dataset config at the demo shapes data under ``root``."""
    dataset.update(
        type='DemoShapesDataset',
        data_root=root,
        generate=demo,
        ann_file=f'annotations/{split}.json',
        data_prefix=dict(img=f'{split}/'))
    dataset.pop('filter_cfg', None)
    # The demo classes, not a fine-tune config's own.
    dataset.pop('metainfo', None)


def one_iteration_cfg(path: str,
                      root: str,
                      work_dir: str,
                      demo: Dict,
                      adapt: Callable = lambda cfg: None):
    """The config at ``path`` on demo data: batch 2, one epoch of one
    iteration, then validation; workers off; AMP as bf16 on CPU; from the
    initial weights (a fine-tune config's ``load_from`` is the user's
    file). ``adapt(cfg)`` makes the task's own changes (e.g. the class
    count)."""
    cfg = load_config(path, work_dir=work_dir)
    cfg.load_from = None
    demo_dataset(cfg.train_dataloader.dataset, root, 'train', demo)
    cfg.train_dataloader.dataset = dict(
        type='FirstSamplesDataset',
        dataset=cfg.train_dataloader.dataset,
        num_samples=2)
    cfg.train_dataloader.pop('batch_sampler', None)
    for loader in ('val_dataloader', 'test_dataloader'):
        demo_dataset(cfg[loader].dataset, root, 'val', demo)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].update(
            batch_size=2, num_workers=0, persistent_workers=False)
    cfg.val_evaluator.ann_file = root + 'annotations/val.json'
    cfg.train_cfg.update(max_epochs=1, val_interval=1)
    if cfg.optim_wrapper.get('dtype') == 'float16':
        cfg.optim_wrapper.dtype = 'bfloat16'  # fp16 needs CUDA
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1)
    cfg.experiment_name = 'cfg_' + osp.splitext(osp.basename(path))[0]
    adapt(cfg)
    return cfg
