"""The per-step guard: one host transfer per step, non-finite steps never
applied, the cause read from the evidence, divergence."""
import math
from unittest import mock

import pytest
import torch

from engine_plugins.engine import (AmpGradSanityOptimWrapper, DivergenceError,
                                   NonFiniteGradError, NonFiniteLossError,
                                   TooManySkippedStepsError)
from .harness import Engine, Net, params


def _linear(model, inputs):
    # d/dw sum(2 w_backbone) + sum(3 w_head): grads 2 (6 entries), 3 (4).
    return dict(
        loss_a=(2 * model.backbone.weight).sum(),
        loss_b=(3 * model.head.weight).sum())


def _nan_grad(model, inputs):
    """The bf16 eigh hazard: eigh of a matrix with a repeated eigenvalue. The
    loss is finite (|eigenvectors of I| sum to 2, eigenvalues to 2), the
    backward divides by the zero eigen-gap and returns NaN."""
    degenerate = torch.eye(2) + torch.diag(model.head.weight[0, :2] * 0)
    values, vectors = torch.linalg.eigh(degenerate)
    return dict(loss=vectors.abs().sum() + values.sum())


def test_norms_per_group_match_hand_computed_values():
    engine = Engine(Net(_linear))
    engine.step()
    monitor = engine.monitor
    assert monitor.last_norms['backbone'] == pytest.approx(2 * math.sqrt(6))
    assert monitor.last_norms['head'] == pytest.approx(6.0)
    # sqrt(6 * 4 + 4 * 9) = sqrt(60)
    assert monitor.last_total_norm == pytest.approx(math.sqrt(60))
    assert monitor.last_report == \
        '[grad] backbone=4.9e+00 head=6.0e+00 ok=True'


def test_an_unchecked_step_costs_one_host_transfer():
    engine = Engine(Net(_linear), strict_iters=1, interval=0)
    engine.step()  # strict: full checks, several transfers
    calls = dict(tolist=0, item=0, bool=0)
    originals = {
        name: getattr(torch.Tensor, attr)
        for name, attr in (('tolist', 'tolist'), ('item', 'item'),
                           ('bool', '__bool__'))
    }

    def counting(name):

        def method(self, *args):
            calls[name] += 1
            return originals[name](self, *args)

        return method

    with mock.patch.object(torch.Tensor, 'tolist', counting('tolist')), \
            mock.patch.object(torch.Tensor, 'item', counting('item')), \
            mock.patch.object(torch.Tensor, '__bool__', counting('bool')):
        engine.step()
    # mmengine's parse_losses builds the total on the device; the guard
    # reads loss, terms and all gradient norms in one transfer.
    assert calls == dict(tolist=1, item=0, bool=0)


def test_nonfinite_grads_with_finite_loss_name_parameter_and_op():
    engine = Engine(Net(_nan_grad))
    before = params(engine.model)
    with pytest.raises(NonFiniteGradError) as err:
        engine.step()
    message = str(err.value)
    assert message.startswith(
        'non-finite gradients at iteration 1 with a finite loss (4); first '
        'NaN/Inf in: head.weight (NaN); backward op: LinalgEighBackward0. '
        'A finite loss with NaN gradients is a backward problem')
    assert err.value.cause == 'nonfinite_backward'
    for p, b in zip(engine.model.parameters(), before):
        torch.testing.assert_close(p.detach(), b)


def test_nonfinite_loss_is_a_forward_problem_named_by_term_and_module():

    def log_of_zero(model, inputs):
        hidden = model.head(torch.zeros(1, 4))  # exactly 0
        return dict(
            loss_ok=model.backbone.weight.sum(),
            loss_log=torch.log(hidden * 0).sum())

    engine = Engine(Net(log_of_zero))
    with pytest.raises(NonFiniteLossError) as err:
        engine.step()
    assert str(err.value).startswith(
        'non-finite loss at iteration 1: loss_log = -inf. A non-finite loss '
        'is a forward problem')
    assert err.value.cause == 'nonfinite_forward'


def test_first_module_with_a_nonfinite_output_is_named():

    def two_layers(model, inputs):
        hidden = model.backbone(inputs.expand(1, 3))
        return dict(loss=model.head(hidden.repeat(1, 2)).sum())

    engine = Engine(Net(two_layers))
    with torch.no_grad():
        engine.model.head.weight[0, 1] = float('nan')
    with pytest.raises(
            NonFiniteLossError,
            match=r'loss = nan. A non-finite loss is a forward problem; '
            r'first non-finite output: head \(Linear, finite inputs\)'):
        engine.step()


def test_a_nonfinite_activation_masked_from_the_loss_is_a_forward_problem():
    """An activation overflows to inf; the loss keeps only the finite
    entries (as an assigner dropping NaN-metric pairs does), so its value
    is finite, but the masked entries still send NaN back (0 * inf)."""

    def masked_overflow(model, inputs):
        hidden = model.head(torch.ones(1, 4))  # inf
        # softmax([inf, 0]) is NaN; the loss keeps the finite entries only.
        probs = torch.softmax(torch.cat([hidden, torch.zeros(1, 1)], -1), -1)
        loss = torch.where(torch.isfinite(probs), probs, 0.0).sum()
        return dict(loss=loss + model.backbone.weight.sum())

    engine = Engine(Net(masked_overflow))
    with torch.no_grad():
        engine.model.head.weight[0] = float('inf')
    with pytest.raises(NonFiniteGradError) as err:
        engine.step()
    assert err.value.cause == 'nonfinite_forward'
    assert ('first non-finite output in the forward pass: head (Linear, '
            'finite inputs). The loss hides it from its value') in str(
                err.value)


def test_a_minus_inf_mask_does_not_move_a_backward_problem():
    """-inf entries are how attention and score masks are written: a
    module whose output holds them is not blamed for NaN gradients that
    come from the backward pass."""

    class MaskingHead(torch.nn.Linear):

        def forward(self, x):
            out = super().forward(x)
            return torch.cat([out, torch.full_like(out, -math.inf)], -1)

    def eigh_after_a_mask(model, inputs):
        scores = model.head(torch.ones(1, 4))  # a score and a masked one
        return dict(
            loss=_nan_grad(model, inputs)['loss'] + scores[:, 0].sum())

    engine = Engine(Net(eigh_after_a_mask))
    engine.model.head.__class__ = MaskingHead
    with pytest.raises(NonFiniteGradError) as err:
        engine.step()
    assert err.value.cause == 'nonfinite_backward'
    assert 'backward op: LinalgEighBackward0' in str(err.value)


def test_nonfinite_input_batch_is_named_as_data():
    engine = Engine(
        Net(lambda m, x: dict(loss=(m.head.weight * x).sum())), strict_iters=0)
    before = params(engine.model)
    engine.step(torch.tensor([float('nan')] * 4))
    warning = engine.kinds('warning')[-1]
    assert warning['cause'] == 'nonfinite_data'
    assert 'the input batch itself is non-finite: inputs of batch item 0' \
        in warning['message']
    assert 'Step skipped (1 in a row, 1 in total); weights unchanged.' in \
        warning['message']
    for p, b in zip(engine.model.parameters(), before):
        torch.testing.assert_close(p.detach(), b)


def test_skip_policy_keeps_weights_and_bounds_the_streak():
    engine = Engine(Net(_nan_grad), strict_iters=0, max_consecutive_skips=2)
    before = params(engine.model)
    engine.step()
    engine.step()
    assert engine.monitor.skipped_steps == 2
    for p, b in zip(engine.model.parameters(), before):
        torch.testing.assert_close(p.detach(), b)
        assert p.grad is None or not p.grad.isnan().any()
    with pytest.raises(TooManySkippedStepsError, match='3 consecutive'):
        engine.step()


def test_a_good_step_resets_the_streak():
    bad = dict(on=True)

    def sometimes_nan(model, inputs):
        loss = model.head(torch.ones(1, 4)).sum()
        return dict(loss=loss * float('nan') if bad['on'] else loss)

    engine = Engine(Net(sometimes_nan), strict_iters=0, locate=False)
    engine.step()
    assert engine.monitor.consecutive_skips == 1
    bad['on'] = False
    weight = engine.model.head.weight.detach().clone()
    engine.step()
    assert engine.monitor.consecutive_skips == 0
    # SGD lr 0.1 on d(sum w)/dw = 1.
    torch.testing.assert_close(engine.model.head.weight, weight - 0.1)


def test_raise_policy_stops_after_the_strict_window_too():
    engine = Engine(
        Net(_nan_grad), strict_iters=0, policy='raise', locate=False)
    with pytest.raises(NonFiniteGradError):
        engine.step()


def test_growing_gradients_are_divergence_with_lr_and_warm_up():
    scale = dict(value=1.0)

    def growing(model, inputs):
        return dict(loss=(scale['value'] * model.head.weight).sum())

    engine = Engine(
        Net(growing),
        strict_iters=0,
        divergence=dict(grad_factor=100.0, loss_factor=1e9, window=3))
    # Steps 1-4 at norm 2 (4 entries of 1), then x10 per step.
    for i in range(4):
        engine.step()
    with pytest.raises(DivergenceError) as err:
        for _ in range(6):
            scale['value'] *= 10
            engine.step()
    message = str(err.value)
    assert message.startswith('divergence at iteration 7: the gradient norm '
                              'grew 1e+02x, from 2 at iterations 1-3 to 200')
    assert 'lr 0.1 (base 0.1); no warm-up' in message


def test_nan_after_growth_is_reported_as_divergence():
    scale = dict(value=1.0)

    def growing(model, inputs):
        return dict(loss=(scale['value'] * model.head.weight).sum())

    # Thresholds out of reach: the NaN itself is the first finding.
    engine = Engine(
        Net(growing),
        strict_iters=0,
        locate=False,
        divergence=dict(grad_factor=1e9, loss_factor=1e9))
    for _ in range(5):
        engine.step()
    for _ in range(3):
        scale['value'] *= 20
        engine.step()
    scale['value'] = float('inf')
    engine.step()
    warning = engine.kinds('warning')[-1]
    assert warning['cause'] == 'divergence'
    assert 'non-finite loss at iteration 9' in warning['message']
    assert 'the run diverged' in warning['message']


def test_clip_grad_reuses_the_guard_norm():
    model = Net(_linear)
    engine = Engine(model)
    engine.wrapper.clip_grad_kwargs = dict(max_norm=1.0)
    engine.wrapper.clip_func = torch.nn.utils.clip_grad_norm_
    before = params(model)
    engine.step()
    # Gradient scaled to norm 1: backbone 2/sqrt(60), head 3/sqrt(60).
    torch.testing.assert_close(model.backbone.weight,
                               before[0] - 0.1 * 2 / math.sqrt(60))
    torch.testing.assert_close(model.head.weight,
                               before[1] - 0.1 * 3 / math.sqrt(60))


def test_amp_variant_runs_bf16_on_cpu_with_the_checks():
    model = Net(_nan_grad)
    engine = Engine(model, wrapper_cls=AmpGradSanityOptimWrapper)
    with engine.wrapper.optim_context(model):
        assert model.head(torch.ones(1, 4)).dtype == torch.bfloat16
    with pytest.raises(NonFiniteGradError):
        engine.step()


def _fp16_scaler(engine):
    engine.wrapper.loss_scaler = torch.amp.GradScaler(
        'cpu', init_scale=2.0**16)


def test_fp16_scaler_overflow_is_left_to_the_scaler():
    model = Net(lambda m, x: dict(loss=(m.head.weight * 1e34).sum()))
    engine = Engine(model, wrapper_cls=AmpGradSanityOptimWrapper)
    _fp16_scaler(engine)
    before = params(model)
    # 1e34 per entry is finite in fp32; x 2^16 overflows to inf. The
    # unscaled re-run is finite: an overflow, not a bug.
    engine.step()
    for p, b in zip(model.parameters(), before):
        torch.testing.assert_close(p.detach(), b)
    assert engine.wrapper.loss_scaler.get_scale() == 2.0**15
    assert engine.monitor.scaler_skips == 1
    assert not engine.kinds('error') and not engine.kinds('warning')


def test_fp16_scaler_nan_that_survives_the_unscaled_rerun_is_a_bug():
    engine = Engine(Net(_nan_grad), wrapper_cls=AmpGradSanityOptimWrapper)
    _fp16_scaler(engine)
    with pytest.raises(NonFiniteGradError, match='head.weight'):
        engine.step()


def test_scaler_state_is_consumed_on_a_skipped_step():
    bad = dict(on=True)

    def sometimes_nan(model, inputs):
        loss = model.head(torch.ones(1, 4)).sum()
        return dict(loss=loss * float('nan') if bad['on'] else loss)

    engine = Engine(
        Net(sometimes_nan),
        wrapper_cls=AmpGradSanityOptimWrapper,
        strict_iters=0,
        locate=False)
    _fp16_scaler(engine)
    engine.step()  # skipped by the monitor: unscale_ must be reset
    bad['on'] = False
    engine.step()  # would raise "unscale_() has already been called"
    assert engine.monitor.skipped_steps == 1
