"""Both CPU quick starts take their data from
configs/_base_/datasets/demo_shapes.py: the same root, generated-data
settings, loaders and metric. Only the pipelines (and the YOLO quick start's
``min_size``) are the task's own."""
import ast
import os.path as osp

import pytest
from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BASE = osp.join(REPO, 'configs', '_base_', 'datasets', 'demo_shapes.py')
QUICK_STARTS = [
    'configs/psalm_yolo/psalm_yolo_n_shapes_cpu.py',
    'configs/rtdetr/rtdetr_r18_shapes_cpu.py',
]
# Set by each task on top of the base.
TASK_DATASET_KEYS = {'pipeline', 'filter_cfg'}


def inherited_files(path):
    """Every file that the config at ``path`` inherits, through its bases'
    bases too, as normalized absolute paths."""
    with open(path) as f:
        tree = ast.parse(f.read())
    files = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(target, ast.Name) and target.id == '_base_'
                for target in node.targets):
            bases = ast.literal_eval(node.value)
            for base in [bases] if isinstance(bases, str) else bases:
                base = osp.normpath(osp.join(osp.dirname(path), base))
                files += [base] + inherited_files(base)
    return files


@pytest.fixture(scope='module')
def base():
    return Config.fromfile(BASE)


@pytest.mark.parametrize('config', QUICK_STARTS)
def test_the_quick_start_inherits_the_demo_shapes_base(config):
    assert BASE in inherited_files(osp.join(REPO, config))


@pytest.mark.parametrize('config', QUICK_STARTS)
def test_the_quick_start_data_is_the_base_data(config, base):
    cfg = Config.fromfile(osp.join(REPO, config))
    for key in ('dataset_type', 'data_root', 'demo_data', 'backend_args'):
        assert cfg[key] == base[key], key
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        for key, value in base[loader].items():
            if key != 'dataset':
                assert cfg[loader][key] == value, (loader, key)
        for key, value in base[loader].dataset.items():
            if key not in TASK_DATASET_KEYS:
                assert cfg[loader].dataset[key] == value, (loader, key)
    # Images without shapes are kept in both tasks.
    assert (cfg.train_dataloader.dataset.filter_cfg.filter_empty_gt ==
            base.train_dataloader.dataset.filter_cfg.filter_empty_gt)
    for evaluator in ('val_evaluator', 'test_evaluator'):
        assert cfg[evaluator] == base[evaluator], evaluator


def test_the_base_reads_and_scores_the_same_files(base):
    assert base.train_dataloader.dataset.data_root == base.data_root
    assert base.val_dataloader.dataset.generate == base.demo_data
    val = base.val_dataloader.dataset
    assert base.val_evaluator.ann_file == val.data_root + val.ann_file
    assert base.test_dataloader == base.val_dataloader
