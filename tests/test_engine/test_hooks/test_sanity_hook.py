"""SanityHook on real Runner runs of the toy task: what it records, logs,
restores on resume, and refuses."""
import glob
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

import tests.toy_task  # noqa: F401  (registers the toy task)
from engine_plugins.engine import NonFiniteLossError
from engine_plugins.engine.hooks.sanity_hook import SKIPPED_KEY
from engine_plugins.engine.sanity.errors import (NonFiniteWeightsError,
                                                 TargetFormatError)
from engine_plugins.registry import HOOKS

REPO = osp.dirname(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
TOY = osp.join(REPO, 'tests', 'data', 'configs', 'toy_regression.py')


@HOOKS.register_module(force=True)
class _NaNInputsAt(Hook):
    """Corrupts the batch of the given (1-based) iterations."""

    def __init__(self, iters):
        self.iters = set(iters)

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter + 1 in self.iters:
            data_batch['inputs'][0, 0] = float('nan')


@HOOKS.register_module(force=True)
class _BreakWeightsAt(Hook):
    """Writes NaN into a weight after the given iteration."""

    def __init__(self, after):
        self.after = after

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None):
        if runner.iter + 1 == self.after:
            with torch.no_grad():
                runner.model.net[0].weight[0, 0] = float('nan')


def _runner(work_dir, replace=None, **overrides):
    cfg = Config.fromfile(TOY)
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = f'sanity_hook_{osp.basename(str(work_dir))}'
    cfg.merge_from_dict(overrides)
    for key, value in (replace or {}).items():
        cfg[key] = value
    return Runner.from_cfg(cfg)


def _events(runner):
    path = osp.join(runner.log_dir, 'sanity.jsonl')
    with open(path) as f:
        return [json.loads(line) for line in f]


def test_a_clean_run_records_its_contract_and_logs_every_step(tmp_path):
    runner = _runner(tmp_path)
    runner.train()
    events = _events(runner)
    contract = [e for e in events if e['kind'] == 'contract'][0]
    assert contract['batch_keys'] == ['inputs', 'targets']
    assert contract['trainable_params'] == dict(net=4 * 16 + 16 + 16 + 1)
    assert not [e for e in events if e['kind'] in ('error', 'warning')]
    amp = [e for e in events if e['kind'] == 'amp'][0]
    assert (amp['optim_wrapper'], amp['loss_scale']) == (
        'GradSanityOptimWrapper', False)
    # Per-module gradient flow on the checked iterations (strict 3, and
    # interval 50 is past the run's 8).
    flows = [e for e in events if e['kind'] == 'grad_flow']
    assert [f['iter'] for f in flows] == [1, 2, 3]
    assert list(flows[0]['grads']) == ['net.0', 'net.2']
    with open(osp.join(runner.log_dir, 'sanity_steps.jsonl')) as f:
        steps = [json.loads(line) for line in f]
    assert [s['iter'] for s in steps] == list(range(1, 9))
    assert all(s['applied'] for s in steps)
    assert steps[0]['lr'] == 0.02 and steps[0]['groups'].keys() == {'other'}
    assert steps[0]['grad_norm'] == pytest.approx(
        steps[0]['groups']['other'])
    # train/grad_norm on every one of the 8 iterations.
    assert len(runner.message_hub.get_scalar('train/grad_norm').data[0]) == 8
    assert runner.optim_wrapper.sanity is None  # detached after training


def test_skipped_steps_are_counted_checkpointed_and_restored(tmp_path):
    hooks = [dict(type='ToyProbeHook'), dict(type='_NaNInputsAt', iters=[5])]
    runner = _runner(tmp_path, custom_hooks=hooks)
    runner.train()
    assert runner.message_hub.get_info(SKIPPED_KEY) == 1
    skip = [e for e in _events(runner) if e['kind'] == 'warning'][0]
    assert skip['iter'] == 5 and skip['cause'] == 'nonfinite_data'
    resumed = _runner(
        tmp_path,
        custom_hooks=hooks,
        resume=True,
        train_cfg=dict(max_iters=10))
    resumed.train()
    assert resumed.message_hub.get_info(SKIPPED_KEY) == 1


def test_a_nan_in_the_strict_window_stops_the_run(tmp_path):
    runner = _runner(
        tmp_path, custom_hooks=[dict(type='_NaNInputsAt', iters=[2])])
    with pytest.raises(NonFiniteLossError) as err:
        runner.train()
    assert err.value.cause == 'nonfinite_data'
    assert str(err.value).startswith(
        'non-finite loss at iteration 2: loss_mse = nan; the input batch '
        'itself is non-finite: inputs of batch item 0')


def test_weights_that_became_nonfinite_never_exit_cleanly(tmp_path):
    # NaN written after the last step: no step ever sees it, the final
    # weights check does. No checkpoint with NaN weights is written.
    runner = _runner(
        tmp_path, custom_hooks=[dict(type='_BreakWeightsAt', after=8)])
    with pytest.raises(
            NonFiniteWeightsError,
            match=r'before saving a '
            r'checkpoint after iteration 8: 1 parameters hold '
            r'NaN/Inf weights, in net.0'):
        runner.train()
    assert not osp.exists(tmp_path / 'iter_8.pth')


def test_plain_optim_wrapper_is_refused_with_the_fix(tmp_path):
    runner = _runner(
        tmp_path,
        optim_wrapper=dict(
            type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1)))
    with pytest.raises(TypeError, match="'GradSanityOptimWrapper'"):
        runner.train()


def test_class_count_mismatch_is_caught_before_training(tmp_path):
    import tests.broken_zoo  # noqa: F401  (a detector with 3 classes)
    from engine_plugins.registry import DATASETS
    from tests.broken_zoo import ZooBoxDataset

    @DATASETS.register_module(force=True)
    class _TwoClassBoxes(ZooBoxDataset):
        metainfo = dict(classes=('a', 'b'))

    runner = _runner(
        tmp_path,
        replace=dict(
            model=dict(type='ZooQueryDetector'),
            custom_hooks=[],
            val_dataloader=None,
            val_cfg=None,
            val_evaluator=None,
            train_dataloader=dict(
                batch_size=4,
                num_workers=0,
                sampler=dict(type='DefaultSampler', shuffle=False),
                collate_fn=dict(type='pseudo_collate'),
                dataset=dict(type='_TwoClassBoxes', as_data_samples=True))),
        train_cfg=dict(val_interval=100))
    with pytest.raises(TargetFormatError) as err:
        runner.train()
    assert err.value.cause == 'class_count'
    assert str(err.value).startswith(
        'preflight, before training: the model has num_classes=3 but the '
        'training dataset (_TwoClassBoxes) has 2 classes')
    assert glob.glob(osp.join(str(tmp_path), '*', 'sanity.jsonl'))


@HOOKS.register_module(force=True)
class _LateLayer(Hook):
    """Replaces a layer between building the optimizer and the first
    step, as ``init_weights`` or a hook with a high priority would."""

    priority = 'HIGHEST'

    def before_train(self, runner):
        runner.model.net[2] = torch.nn.Linear(16, 1)


def test_optimizer_and_accumulation_are_checked_before_training(tmp_path):
    from engine_plugins.engine import NoUpdateError, OptimizerCoverageError
    runner = _runner(tmp_path / 'late', custom_hooks=[dict(type='_LateLayer')])
    with pytest.raises(OptimizerCoverageError) as err:
        runner.train()
    assert str(err.value).startswith(
        'preflight, before training: 2 trainable parameters are not in the '
        'optimizer: net.2.weight, net.2.bias')
    runner = _runner(
        tmp_path / 'acc', optim_wrapper=dict(accumulative_counts=256))
    with pytest.raises(NoUpdateError, match='accumulative_counts=256 '
                       'accumulates that many iterations per optimizer '
                       'step, and the run has 8: the optimizer steps once, '
                       'at the last iteration'):
        runner.train()


def test_mmengine_steps_an_accumulation_remainder_at_the_last_iteration():
    # The fact behind the accumulation message: with accumulative_counts
    # larger than the run, the only step is the last iteration's.
    from mmengine.optim import OptimWrapper
    layer = torch.nn.Linear(2, 1)
    wrapper = OptimWrapper(
        torch.optim.SGD(layer.parameters(), lr=0.1), accumulative_counts=256)
    wrapper.initialize_count_status(layer, 0, 3)
    changed = []
    for _ in range(3):
        before = layer.weight.detach().clone()
        wrapper.update_params(layer(torch.ones(1, 2)).sum())
        changed.append(not torch.equal(before, layer.weight))
    assert changed == [False, False, True]
