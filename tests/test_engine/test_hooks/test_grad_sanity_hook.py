"""GradSanityHook: configures the wrapper, reports norms and skipped
steps, and refuses a wrapper that cannot check."""
import importlib.util
import os.path as osp
from unittest.mock import Mock

import pytest
import torch
import torch.nn as nn
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper

from engine_plugins.engine import GradSanityHook, GradSanityOptimWrapper
from engine_plugins.engine.hooks.grad_sanity_hook import (NORM_PREFIX,
                                                          SKIPPED_KEY)

REPO = osp.dirname(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))


class _Model(nn.Module):

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(2, 1, bias=False)

    def parse_losses(self, losses):
        return sum(losses.values()), {}


def _runner(wrapper, model):
    hub = MessageHub.get_instance('grad_sanity_hook_test')
    hub.runtime_info.pop(SKIPPED_KEY, None)
    return Mock(optim_wrapper=wrapper, model=model, message_hub=hub, iter=0)


def test_hook_configures_wrapper_and_reports_norms():
    model = _Model()
    wrapper = GradSanityOptimWrapper(
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    runner = _runner(wrapper, model)
    hook = GradSanityHook(strict_iters=1, interval=0)
    hook.before_train(runner)
    hook.before_train_iter(runner, 0, data_batch=dict(x=1))
    assert wrapper._batch == dict(x=1)
    # parse_losses now routes the loss terms to the wrapper.
    loss, _ = model.parse_losses(dict(loss_a=(4 * model.head.weight).sum()))
    wrapper.update_params(loss)
    hook.after_train_iter(runner, 0)
    # grad of sum(4 w) over 2 weights = [4, 4]; norm = 4 sqrt(2).
    value = runner.message_hub.get_scalar(f'{NORM_PREFIX}/head').current()
    assert value == pytest.approx(4 * 2**0.5)
    runner.visualizer.add_scalars.assert_called_once()
    assert runner.message_hub.get_info(SKIPPED_KEY) == 0
    assert wrapper._batch is None and wrapper._losses is None


def test_skipped_steps_survive_in_message_hub_and_restore():
    model = _Model()
    wrapper = GradSanityOptimWrapper(
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    runner = _runner(wrapper, model)
    runner.message_hub.update_info(SKIPPED_KEY, 7)  # as after a resume
    GradSanityHook(strict_iters=0, policy='skip').before_train(runner)
    assert wrapper.skipped_steps == 7
    nan = (model.head.weight * float('nan')).sum()
    wrapper.record_losses(dict(loss=nan))
    wrapper.update_params(nan)
    GradSanityHook().after_train_iter(runner, 0)
    assert runner.message_hub.get_info(SKIPPED_KEY) == 8
    assert SKIPPED_KEY in runner.message_hub.state_dict()['runtime_info']


def test_plain_optim_wrapper_is_refused_with_the_fix():
    model = _Model()
    wrapper = OptimWrapper(
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    with pytest.raises(TypeError, match="'GradSanityOptimWrapper'"):
        GradSanityHook().before_train(_runner(wrapper, model))


def test_unknown_policy_is_refused():
    model = _Model()
    wrapper = GradSanityOptimWrapper(
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    with pytest.raises(ValueError, match="'raise', 'skip', 'warn'"):
        GradSanityHook(policy='ignore').before_train(_runner(wrapper, model))


@pytest.mark.slow
def test_toy_run_prints_grad_line(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location(
        'tool_train_hook_test', osp.join(REPO, 'tools', 'train.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    tool.main([
        osp.join(REPO, 'tests', 'data', 'configs', 'toy_regression.py'),
        '--work-dir',
        str(tmp_path), '--cfg-options', 'train_cfg.max_iters=3'
    ])
    logs = ''.join(p.read_text() for p in tmp_path.rglob('*.log'))
    for it in (1, 2, 3):
        assert f'iter {it}: [grad] other=' in logs
    assert 'ok=True' in logs


def test_messages_count_iterations_like_the_runner_after_resume():
    from engine_plugins.engine import DeadLossError
    model = _Model()
    wrapper = GradSanityOptimWrapper(
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    runner = _runner(wrapper, model)
    runner.iter = 41  # resumed: 41 iterations already done
    hook = GradSanityHook()
    hook.before_train(runner)
    hook.before_train_iter(runner, 0, data_batch={})
    # The first iteration of this process is strict, and is iteration 42.
    loss, _ = model.parse_losses(dict(loss_a=model.head.weight.sum() * 0))
    with pytest.raises(DeadLossError, match='loss check at iteration 42:'):
        wrapper.update_params(loss)
