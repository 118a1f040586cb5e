"""PreflightHook: wraps _run_forward for the first iterations only."""
from unittest.mock import Mock, patch

import pytest
import torch
from mmengine.logging import MMLogger

from engine_plugins.engine import PreflightHook
from engine_plugins.engine.sanity.preflight import (BatchContractError,
                                                    LossRangeError,
                                                    TargetFormatError)


class _Model(torch.nn.Module):
    required_inputs = ('input_ids', 'label_ids')
    loss_clamp_limits = dict(loss_x=10.0)

    def __init__(self, loss_value=1.0):
        super().__init__()
        self.loss_value = loss_value

    def _run_forward(self, data, mode):
        return dict(loss_x=torch.tensor(self.loss_value))


def _hooked(model, **kwargs):
    MMLogger.get_instance('preflight_hook_test')
    runner = Mock(model=model, iter=0)
    PreflightHook(**kwargs).before_train(runner)
    return runner


def test_missing_key_fails_on_first_iteration_only():
    model = _Model()
    _hooked(model)
    with pytest.raises(BatchContractError,
                       match=r"^preflight, iteration 1: the model requires "
                       r"batch keys \['label_ids'\]"):
        model._run_forward(dict(input_ids=torch.ones(1)), 'loss')
    # iters=1: the check ran once; later iterations are not checked.
    assert model._run_forward(dict(input_ids=torch.ones(1)), 'loss')
    # predict mode is never checked
    model2 = _Model()
    _hooked(model2)
    model2._run_forward(dict(), 'predict')
    with pytest.raises(BatchContractError):
        model2._run_forward(dict(), 'loss')


def test_unused_keys_warn_and_clamped_loss_raises():
    model = _Model()
    _hooked(model, iters=2)
    batch = dict(input_ids=torch.ones(1), label_ids=torch.ones(1),
                 extra=torch.ones(1))
    with patch('engine_plugins.engine.hooks.preflight_hook.print_log') as log:
        model._run_forward(batch, 'loss')
    assert "batch keys ['extra'] are produced" in log.call_args[0][0]
    model.loss_value = 10.0
    with pytest.raises(LossRangeError,
                       match='loss_x = 10 sits at its clamp limit'):
        model._run_forward(batch, 'loss')


class _Classes:
    """A wrapped dataset, as FirstSamplesDataset wraps a CocoDataset."""

    def __init__(self, classes):
        self.dataset = Mock(metainfo=dict(classes=classes))


def test_class_count_mismatch_is_caught_before_training():
    model = _Model()
    model.num_classes = 80
    runner = Mock(model=model, iter=0, _val_loop=None)
    runner.train_dataloader.dataset = _Classes(('circle', 'square'))
    with pytest.raises(
            TargetFormatError,
            match=r"^preflight, before training: the model has "
            r"num_classes=80 but the training dataset \(_Classes\) has 2 "
            r"classes \('circle', 'square'\)"):
        PreflightHook().before_train(runner)
    # Matching counts, or a dataset without class names, pass.
    model.num_classes = 2
    PreflightHook().before_train(runner)
    runner.train_dataloader.dataset = Mock(metainfo={}, dataset=None)
    PreflightHook(num_classes=7).before_train(runner)
