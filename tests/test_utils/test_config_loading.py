"""Config inheritance (two levels), --cfg-options, and key checks."""
import os.path as osp

import pytest
from mmengine.config import DictAction

from engine_plugins.utils import check_cfg_options, load_config

DATA = osp.join(
    osp.dirname(osp.dirname(__file__)), 'data', 'configs', 'inherit')


def test_two_level_inheritance_overrides_deletes_and_adds():
    cfg = load_config(osp.join(DATA, 'child.py'))
    # child overrides a key that base set and parent kept.
    assert cfg.model.backbone.depth == 18
    # parent's override of base survives the child.
    assert cfg.model.neck.out_channels == 128
    # _delete_ in the child drops base's optimizer keys entirely.
    assert dict(cfg.optim_wrapper.optimizer) == dict(type='AdamW', lr=1e-4)
    # keys added at each level.
    assert cfg.model.head.num_classes == 3
    assert cfg.experiment_tag == 'child'
    # untouched base keys are inherited through both levels.
    assert cfg.model.backbone.frozen_stages == 1
    assert cfg.train_cfg.max_epochs == 12
    assert cfg.default_scope == 'engine_plugins'


def test_cfg_options_override_a_nested_key():
    parser = __import__('argparse').ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args([
        '--cfg-options', 'model.backbone.depth=50',
        'optim_wrapper.optimizer.lr=0.5'
    ])
    cfg = load_config(osp.join(DATA, 'child.py'), args.cfg_options)
    assert cfg.model.backbone.depth == 50
    assert cfg.optim_wrapper.optimizer.lr == 0.5
    assert cfg.model.backbone.frozen_stages == 1


def test_unknown_cfg_option_key_is_named_with_closest_match():
    cfg = load_config(osp.join(DATA, 'child.py'))
    messages = check_cfg_options(cfg, {
        'model.backbone.depht': 50,
        'model.backbone.depth': 50
    })
    assert len(messages) == 1
    assert "'depht' is not in model.backbone" in messages[0]
    assert "did you mean 'depth'" in messages[0]


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='absent.py'):
        load_config(str(tmp_path / 'absent.py'))


def test_default_hooks_of_ours_can_be_disabled_with_none(tmp_path):
    """mmengine asserts on None for hook names it does not know; the
    documented `default_hooks=dict(sanity=None)` must work."""
    from engine_plugins.utils import build_runner
    toy = osp.join(osp.dirname(DATA), 'toy_regression.py')
    cfg = load_config(
        toy, {
            'default_hooks.sanity': None,
            'default_hooks.data_seed': None,
            'default_hooks.timer': None
        },
        work_dir=str(tmp_path))
    runner = build_runner(cfg)
    names = {type(h).__name__ for h in runner.hooks}
    assert not names & {'SanityHook', 'EpochSeededDataHook', 'IterTimerHook'}
    assert 'SafeCheckpointHook' in names


def test_cfg_options_with_python_code_values_are_refused(tmp_path):
    """mmengine's DictAction leaves dict(...) as a string: a hook list
    would arrive as ["dict(type='MyHook')"] and fail deep in the Runner."""
    import argparse
    toy = osp.join(osp.dirname(DATA), 'toy_regression.py')
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    options = parser.parse_args(
        ['--cfg-options', "custom_hooks=[dict(type='MyHook')]"]).cfg_options
    assert options == {'custom_hooks': ["dict(type='MyHook')"]}
    with pytest.raises(ValueError, match=r'custom_hooks\.0\.type=X'):
        load_config(toy, options)
    with pytest.raises(ValueError, match='does not evaluate dict'):
        load_config(toy, {'model': "dict(type='ToyRegressor')"})
    # Literals still pass.
    cfg = load_config(toy, {'train_cfg.max_iters': 3, 'model.hidden': 8},
                      work_dir=str(tmp_path))
    assert cfg.model.hidden == 8
