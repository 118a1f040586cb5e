"""GradSanityOptimWrapper / AmpGradSanityOptimWrapper: checks between
backward and step."""
import logging
import math
from unittest import mock

import pytest
import torch
import torch.nn as nn
from mmengine.logging import MMLogger

from engine_plugins.engine import (AmpGradSanityOptimWrapper, DeadLossError,
                                   GradSanityOptimWrapper, NoGradientError,
                                   NonFiniteGradError,
                                   TooManySkippedStepsError)


class _Net(nn.Module):
    """backbone (2x3) and head (1x4) weights, no biases."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Linear(3, 2, bias=False)
        self.head = nn.Linear(4, 1, bias=False)


class _Rerunnable(nn.Module):
    """The BaseModel interface the wrapper uses to re-run an iteration."""

    def __init__(self, net, loss_fn):
        super().__init__()
        self.net = net
        self.loss_fn = loss_fn

    def data_preprocessor(self, batch, training):
        return batch

    def _run_forward(self, data, mode):
        return dict(loss=self.loss_fn(self.net))

    def parse_losses(self, losses):
        return losses['loss'], {}


def _wrapper(model, cls=GradSanityOptimWrapper, **cfg):
    wrapper = cls(optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    cfg.setdefault('strict_iters', 1)
    wrapper.configure_sanity(model=model, **cfg)
    return wrapper


def _step(wrapper, losses):
    wrapper.record_losses(losses)
    wrapper.update_params(sum(losses.values()))


@pytest.fixture(autouse=True)
def _logger():
    MMLogger.get_instance('grad_sanity_test')


def test_norms_per_group_match_hand_computed_values():
    model = _Net()
    wrapper = _wrapper(model)
    # d/dw sum(c * w) = c: backbone grad = 2 everywhere (6 entries), head
    # grad = 3 (4 entries).
    _step(
        wrapper,
        dict(
            loss_a=(2 * model.backbone.weight).sum(),
            loss_b=(3 * model.head.weight).sum()))
    assert wrapper.last_norms['backbone'] == pytest.approx(2 * math.sqrt(6))
    assert wrapper.last_norms['head'] == pytest.approx(6.0)
    assert wrapper.last_report == \
        '[grad] backbone=4.9e+00 head=6.0e+00 ok=True'


def test_leaf_tensor_loss_is_diagnosed_before_backward():
    model = _Net()
    wrapper = _wrapper(model)
    fresh = torch.tensor(1.5, requires_grad=True)
    with pytest.raises(DeadLossError) as err:
        _step(wrapper, dict(loss_fresh=fresh))
    message = str(err.value)
    assert 'loss check at iteration 1' in message
    assert ('loss_fresh = 1.5 is a leaf tensor, not computed from the '
            'model') in message
    assert 'No inf checks were recorded' in message


def test_all_zero_terms_name_the_dead_terms():
    model = _Net()
    wrapper = _wrapper(model)
    out = model.head(torch.ones(1, 4))
    with pytest.raises(DeadLossError, match='loss_bbox, loss_cls are 0.0'):
        _step(wrapper, dict(loss_bbox=out.sum() * 0, loss_cls=out.sum() * 0))


def test_detached_term_is_named_even_if_others_train():
    model = _Net()
    wrapper = _wrapper(model)
    out = model.head(torch.ones(1, 4)).sum()
    with pytest.raises(DeadLossError,
                       match='loss_dfl = [-0-9.e]+ is detached from the'):
        _step(wrapper, dict(loss_cls=out, loss_dfl=out.detach()))


def test_zero_coverage_reports_modules():
    model = _Net()
    wrapper = _wrapper(model)
    # Non-zero, connected loss whose gradient is identically zero.
    loss = (model.head(torch.ones(1, 4)) * 0).sum() + 1.0
    with pytest.raises(NoGradientError) as err:
        _step(wrapper, dict(loss=loss))
    assert str(err.value).startswith(
        'iteration 1: 0/2 parameters have non-zero gradients; no grad: '
        'backbone.* (all), head.* (all)')


def test_partial_coverage_warns_and_frozen_parameters_do_not_count():
    model = _Net()
    wrapper = _wrapper(model)
    target = 'engine_plugins.engine.optim_wrappers.' \
        'grad_sanity_optim_wrapper.print_log'
    # backbone unused: reported as missing.
    with mock.patch(target) as log:
        _step(wrapper, dict(loss=model.head(torch.ones(1, 4)).sum()))
    assert log.call_args[0][0] == (
        'iteration 1: 1/2 parameters have non-zero gradients; no grad: '
        'backbone.* (all)')
    # backbone in the graph but multiplied by zero (a detection level with
    # no positives): information, not a warning.
    wrapper = _wrapper(model)
    feats = model.backbone(torch.ones(1, 3))
    loss = model.head(torch.ones(1, 4)).sum() + (feats * 0).sum()
    with mock.patch(target) as log:
        _step(wrapper, dict(loss=loss))
    assert log.call_args[0][0] == (
        'iteration 1: 1/2 parameters have non-zero gradients; zero grad: '
        'backbone.* (all) (in the graph, but nothing flowed back this '
        'step: e.g. a detection level without positives, or LoRA A while B '
        'is still zero)')
    assert log.call_args[1]['level'] == logging.INFO
    # backbone frozen by design: nothing to report.
    model.backbone.weight.requires_grad_(False)
    wrapper = _wrapper(model)
    with mock.patch(target) as log:
        _step(wrapper, dict(loss=model.head(torch.ones(1, 4)).sum()))
    log.assert_not_called()


def _nan_grad_loss(model):
    """Seed 004's hazard: eigh of a matrix with a repeated eigenvalue. The
    loss is finite (|eigenvectors of I| sum to 2, eigenvalues to 2), the
    backward divides by the zero eigen-gap and returns NaN."""
    degenerate = torch.eye(2) + torch.diag(model.head.weight[0, :2] * 0)
    values, vectors = torch.linalg.eigh(degenerate)
    return vectors.abs().sum() + values.sum()


def test_nonfinite_grads_with_finite_loss_name_parameter():
    model = _Net()
    wrapper = _wrapper(model)
    with pytest.raises(NonFiniteGradError) as err:
        _step(wrapper, dict(loss=_nan_grad_loss(model)))
    message = str(err.value)
    assert 'non-finite gradients at iteration 1 with a finite loss (4)' in \
        message
    assert 'first NaN/Inf in: head.weight (NaN)' in message
    assert 'FP32 loss region' in message


def test_locate_names_the_backward_op():
    model = _Net()
    wrapper = _wrapper(model, locate=True)

    wrapper.sanity_model = _Rerunnable(model, _nan_grad_loss)
    wrapper.record_batch(dict(inputs=torch.ones(1)))
    weight = model.head.weight.detach().clone()
    with pytest.raises(
            NonFiniteGradError, match='backward op: LinalgEighBackward0'):
        _step(wrapper, dict(loss=_nan_grad_loss(model)))
    torch.testing.assert_close(model.head.weight, weight)


def test_skip_policy_keeps_weights_and_bounds_skips():
    model = _Net()
    wrapper = _wrapper(
        model, strict_iters=0, policy='skip', max_consecutive_skips=2)
    before = [p.detach().clone() for p in model.parameters()]
    for _ in range(2):
        _step(wrapper, dict(loss=_nan_grad_loss(model)))
    assert wrapper.skipped_steps == 2
    for p, b in zip(model.parameters(), before):
        torch.testing.assert_close(p.detach(), b)
        assert p.grad is None or not p.grad.isnan().any()
    with pytest.raises(TooManySkippedStepsError, match='3 consecutive'):
        _step(wrapper, dict(loss=_nan_grad_loss(model)))
    # A good step resets the streak.
    wrapper.consecutive_skips = 0
    _step(wrapper, dict(loss=model.head(torch.ones(1, 4)).sum()))
    assert wrapper.consecutive_skips == 0
    assert not torch.equal(model.head.weight, before[1])


def test_unconfigured_wrapper_is_a_plain_optim_wrapper():
    model = _Net()
    wrapper = GradSanityOptimWrapper(
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    before = model.head.weight.detach().clone()
    wrapper.update_params(model.head(torch.ones(1, 4)).sum())
    torch.testing.assert_close(model.head.weight, before - 0.1)


def test_amp_variant_runs_bf16_on_cpu_with_the_checks():
    model = _Net()
    wrapper = _wrapper(model, cls=AmpGradSanityOptimWrapper)
    with wrapper.optim_context(model):
        out = model.head(torch.ones(1, 4))
        assert out.dtype == torch.bfloat16
    with pytest.raises(NonFiniteGradError):
        _step(wrapper, dict(loss=_nan_grad_loss(model)))


def _fp16_scaler_wrapper(model, **cfg):
    wrapper = _wrapper(model, cls=AmpGradSanityOptimWrapper, **cfg)
    wrapper.loss_scaler = torch.amp.GradScaler('cpu', init_scale=2.0**16)
    return wrapper


def test_fp16_scaler_overflow_is_not_a_bug():
    model = _Net()
    wrapper = _fp16_scaler_wrapper(model)

    wrapper.sanity_model = _Rerunnable(model, lambda m:
                                       (m.head.weight * 1e34).sum())
    wrapper.record_batch({})
    before = model.head.weight.detach().clone()
    # 1e34 x 4 terms is finite in fp32; x 2^16 overflows to inf.
    _step(wrapper, dict(loss=(model.head.weight * 1e34).sum()))
    # GradScaler skipped the step and halved the scale; no error.
    torch.testing.assert_close(model.head.weight, before)
    assert wrapper.loss_scaler.get_scale() == 2.0**15


def test_fp16_scaler_nan_that_survives_unscaled_rerun_is_a_bug():
    model = _Net()
    wrapper = _fp16_scaler_wrapper(model)

    wrapper.sanity_model = _Rerunnable(model, _nan_grad_loss)
    wrapper.record_batch({})
    with pytest.raises(NonFiniteGradError, match='head.weight'):
        _step(wrapper, dict(loss=_nan_grad_loss(model)))


def test_detached_loss_is_diagnosed_before_grad_scaler_asserts():
    model = _Net()
    wrapper = _fp16_scaler_wrapper(model)
    detached = model.head(torch.ones(1, 4)).sum().detach()
    # Without the check GradScaler.step raises "No inf checks were
    # recorded for this optimizer"; the check fires first and says why.
    with pytest.raises(DeadLossError, match='loss_cls = .* is detached'):
        _step(wrapper, dict(loss_cls=detached))
