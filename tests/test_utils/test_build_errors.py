"""Registry builds with unknown arguments or types name the fix."""
import os.path as osp
import uuid

import mmengine.registry.build_functions
import pytest
import torch.nn as nn
from mmengine.registry import Registry, init_default_scope

from engine_plugins.registry import HOOKS, MODELS
from engine_plugins.utils import build_runner, load_config
from engine_plugins.utils.build_errors import (UnknownArgumentError,
                                               UnknownTypeError,
                                               accepted_arguments,
                                               closest_name)
from tests.tool_loading import load_tool

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@MODELS.register_module(force=True)
class _ToyDetector(nn.Module):
    """A misspelt keyword: the config passes 'backbone_name' for
    'backbone_type'."""

    def __init__(self,
                 backbone_type: str = 'r50',
                 num_queries: int = 300,
                 **kwargs):
        super().__init__(**kwargs)


def setup_module():
    init_default_scope('engine_plugins')


def test_unknown_argument_lists_accepted_and_closest():
    with pytest.raises(UnknownArgumentError) as err:
        MODELS.build(dict(type='_ToyDetector', backbone_name='r18'))
    # **kwargs goes to nn.Module.__init__, which takes nothing more.
    assert str(err.value) == (
        "_ToyDetector got an unexpected argument 'backbone_name'; did you "
        "mean 'backbone_type'? Accepted: backbone_type, num_queries")


def test_nested_build_names_the_inner_class():
    # RetinaNet builds ResNet through the registry; the error is about
    # ResNet's argument, not RetinaNet's.
    with pytest.raises(
            UnknownArgumentError,
            match="^ResNet got an unexpected argument 'depht'; "
            "did you mean 'depth'"):
        MODELS.build(
            dict(
                type='RetinaNet',
                backbone=dict(type='ResNet', depht=18),
                neck=dict(
                    type='FPN', in_channels=[64], out_channels=8, num_outs=1),
                bbox_head=dict(
                    type='RetinaHead', num_classes=2, in_channels=8)))


def test_unknown_type_suggests_registered_name():
    with pytest.raises(UnknownTypeError) as err:
        HOOKS.build(dict(type='SanityHok'))
    assert "did you mean 'SanityHook'?" in str(err.value)
    assert 'engine_plugins::hook' in str(err.value)


def test_errors_raised_inside_a_constructor_are_not_rewritten():

    @MODELS.register_module(force=True)
    class _Inner(nn.Module):

        def __init__(self, width: int = 2):
            super().__init__()
            nn.Linear(width, width, activation='relu')

    with pytest.raises(TypeError) as err:
        MODELS.build(dict(type='_Inner'))
    assert not isinstance(err.value, UnknownArgumentError)


def test_accepted_arguments_follows_kwargs_up_the_mro():

    class Base:

        def __init__(self, a, b=1):
            pass

    class Child(Base):

        def __init__(self, c, **kwargs):
            super().__init__(**kwargs)

    assert accepted_arguments(Child) == ['c', 'a', 'b']
    assert accepted_arguments(lambda **kw: None) is None


def test_closest_name_ranks_a_short_typo_first():
    # 'ProfilerHook' has a fair difflib ratio to 'ToyProbeHok' too; a
    # one-letter typo of a registered name wins over it.
    assert closest_name('ToyProbeHok',
                        [['ProfilerHook'], ['ToyProbeHook']]) == 'ToyProbeHook'
    assert closest_name('SDG', [['ASGD', 'SGD', 'Adam']]) == 'SGD'  # a swap
    assert closest_name('sanityhook', [['SanityHook']]) == 'SanityHook'
    assert closest_name('Frobnicate', [['SanityHook', 'SGD']]) is None


def test_closest_name_prefers_the_registry_searched_first_on_ties():
    assert closest_name('CheckpointHok',
                        [['CheckpointHook'], ['CheckpointHook']]) == \
        'CheckpointHook'
    assert closest_name('LinearLX', [['LinearLR'], ['LinearLY']]) == 'LinearLR'
    assert closest_name('LinearLX', [['LinearLY'], ['LinearLR']]) == 'LinearLY'


# The toy task runs in seconds; each case changes one key of its config.
TOY_CONFIG = osp.join(REPO, 'tests', 'data', 'configs', 'toy_regression.py')
SCHEDULER = dict(type='LinearLR', start_factor=0.5, by_epoch=False, end=4)
# An epoch schedule converted to iterations: mmengine builds it without
# build_from_cfg.
EPOCH_SCHEDULER = dict(
    type='LinearLR', start_factor=0.5, convert_to_iter_based=True, end=1)

TYPE_TYPOS = {
    'model': ({'model.type': 'ToyRegresor'}, 'ToyRegressor', 'model'),
    'default_hook': ({
        'default_hooks.sanity.type': 'SanityHok'
    }, 'SanityHook', 'hook'),
    'custom_hook': ({
        'custom_hooks': [dict(type='ToyProbeHok')]
    }, 'ToyProbeHook', 'hook'),
    'custom_hook_readme': ({
        'custom_hooks': [dict(type='GradSanityHok')]
    }, 'SanityHook', 'hook'),
    'optimizer': ({
        'optim_wrapper.optimizer.type': 'SDG'
    }, 'SGD', 'optimizer'),
    'optim_wrapper': ({
        'optim_wrapper.type': 'GradSanityOptimWraper'
    }, 'GradSanityOptimWrapper', 'optim_wrapper'),
    'param_scheduler': ({
        'param_scheduler': [dict(SCHEDULER, type='LinarLR')]
    }, 'LinearLR', 'parameter scheduler'),
    'epoch_param_scheduler': ({
        'param_scheduler': [dict(EPOCH_SCHEDULER, type='LinearLRR')]
    }, 'LinearLR', 'parameter scheduler'),
    'dataset': ({
        'train_dataloader.dataset.type': 'ToyRegressionDatset'
    }, 'ToyRegressionDataset', 'dataset'),
}

ARGUMENT_TYPOS = {
    'model': ({'model.hiden': 8}, 'ToyRegressor', 'hiden', 'hidden'),
    'default_hook': ({
        'default_hooks.sanity.strict_iter': 2
    }, 'SanityHook', 'strict_iter', 'strict_iters'),
    'custom_hook': ({
        'custom_hooks': [
            dict(type='CloseMosaicHook', num_last_epoch=1, switch_pipeline=[])
        ]
    }, 'CloseMosaicHook', 'num_last_epoch', 'num_last_epochs'),
    'optimizer': ({
        'optim_wrapper.optimizer.momentun': 0.9
    }, 'SGD', 'momentun', 'momentum'),
    'optim_wrapper': ({
        'optim_wrapper.clip_gradd': dict(max_norm=1.0)
    }, 'GradSanityOptimWrapper', 'clip_gradd', 'clip_grad'),
    'param_scheduler': ({
        'param_scheduler': [dict(SCHEDULER, start_factr=0.5)]
    }, 'LinearLR', 'start_factr', 'start_factor'),
    'epoch_param_scheduler': ({
        'param_scheduler': [dict(EPOCH_SCHEDULER, start_factr=0.5)]
    }, 'LinearLR', 'start_factr', 'start_factor'),
    'dataset': ({
        'train_dataloader.dataset.num_sample': 8
    }, 'ToyRegressionDataset', 'num_sample', 'num_samples'),
}


def _build_and_train(tmp_path, options):
    """What tools/train.py does, up to the first iteration: the model and
    hooks are built by the Runner, the dataset, optim wrapper and
    schedulers by ``train()``."""
    cfg = load_config(TOY_CONFIG, options, str(tmp_path))
    cfg.experiment_name = f'build_errors_{uuid.uuid4().hex}'
    build_runner(cfg).train()


@pytest.mark.parametrize('case', sorted(TYPE_TYPOS))
def test_runner_names_the_registered_type(tmp_path, case):
    options, meant, registry = TYPE_TYPOS[case]
    with pytest.raises(UnknownTypeError) as err:
        _build_and_train(tmp_path, options)
    # The registry Runner's build searched under the default scope, and
    # the suggestion from its whole chain of parents.
    assert f'engine_plugins::{registry} registry' in str(err.value)
    assert f"did you mean '{meant}'?" in str(err.value)


@pytest.mark.parametrize('case', sorted(ARGUMENT_TYPOS))
def test_runner_names_the_accepted_argument(tmp_path, case):
    options, cls, bad, meant = ARGUMENT_TYPOS[case]
    with pytest.raises(UnknownArgumentError) as err:
        _build_and_train(tmp_path, options)
    assert str(err.value).startswith(
        f"{cls} got an unexpected argument '{bad}'; did you mean '{meant}'? "
        'Accepted: ')


def test_a_class_without_arguments_names_the_argument(tmp_path):
    # ToyProbeHook has no __init__: Python says only "takes no arguments".
    with pytest.raises(UnknownArgumentError) as err:
        _build_and_train(tmp_path, {'custom_hooks.0.prioriti': 'LOW'})
    assert str(err.value) == (
        "ToyProbeHook got an unexpected argument 'prioriti'. It takes no "
        'arguments.')


def test_train_tool_suggests_a_close_hook(tmp_path):
    train_tool = load_tool('train')
    config = tmp_path / 'typo.py'
    config.write_text(f'_base_ = [{TOY_CONFIG!r}]\n'
                      "custom_hooks = [dict(type='GradSanityHok')]\n")
    with pytest.raises(UnknownTypeError, match="did you mean 'SanityHook'"):
        train_tool.main([str(config), '--work-dir', str(tmp_path / 'a')])
    # The same through --cfg-options, on the toy config's custom hook.
    with pytest.raises(UnknownTypeError, match="did you mean 'ToyProbeHook'"):
        train_tool.main([
            TOY_CONFIG, '--work-dir',
            str(tmp_path / 'b'), '--cfg-options',
            'custom_hooks.0.type=ToyProbeHok'
        ])


def test_registries_made_before_the_fix_explain_too():
    # A registry keeps the build function its parent had when it was made;
    # the explanation must not depend on which one that was.
    mmengine_build = mmengine.registry.build_functions.build_from_cfg
    late = Registry(
        'hook',
        parent=HOOKS,
        scope='late_scope',
        build_func=mmengine_build.__wrapped__)
    try:
        with pytest.raises(
                UnknownTypeError, match="did you mean 'SanityHook'"):
            late.build(dict(type='SanityHok'))
    finally:
        HOOKS._children.pop('late_scope')
