"""GradSanityOptimWrapper / AmpGradSanityOptimWrapper: the seam between
backward and step."""
import torch
import torch.nn as nn

from engine_plugins.engine import (AmpGradSanityOptimWrapper,
                                   GradSanityOptimWrapper)
from ..test_sanity.harness import Engine, Net


def _head_sum(model, inputs):
    return dict(loss=model.head(torch.ones(1, 4)).sum())


def test_without_a_monitor_it_is_a_plain_optim_wrapper():
    model = nn.Linear(4, 1, bias=False)
    wrapper = GradSanityOptimWrapper(
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    before = model.weight.detach().clone()
    wrapper.update_params(model(torch.ones(1, 4)).sum())
    torch.testing.assert_close(model.weight, before - 0.1)


def test_accumulation_checks_and_steps_once_per_update():
    model = Net(_head_sum)
    engine = Engine(model)
    engine.wrapper._accumulative_counts = 2
    engine.wrapper._max_counts = 4
    calls = []
    original = engine.monitor.before_step

    def counting(loss, scaler=None):
        calls.append(engine.iteration)
        return original(loss, scaler)

    engine.monitor.before_step = counting
    weight = model.head.weight.detach().clone()
    engine.step()
    torch.testing.assert_close(model.head.weight, weight)  # accumulating
    engine.step()
    assert calls == [2]
    # Two accumulated half-gradients of 1: one SGD step of lr 0.1.
    torch.testing.assert_close(model.head.weight, weight - 0.1)


def test_value_clipping_falls_back_to_mmengine():
    model = Net(_head_sum)
    engine = Engine(model)
    engine.wrapper.clip_grad_kwargs = dict(clip_value=0.25)
    engine.wrapper.clip_func = torch.nn.utils.clip_grad_value_
    weight = model.head.weight.detach().clone()
    engine.step()
    torch.testing.assert_close(model.head.weight, weight - 0.1 * 0.25)


def test_amp_step_unscales_once_and_clips_unscaled_gradients():
    model = Net(_head_sum)
    engine = Engine(model, wrapper_cls=AmpGradSanityOptimWrapper)
    engine.wrapper.loss_scaler = torch.amp.GradScaler(
        'cpu', init_scale=2.0**10)
    engine.wrapper.clip_grad_kwargs = dict(max_norm=1.0)
    engine.wrapper.clip_func = torch.nn.utils.clip_grad_norm_
    weight = model.head.weight.detach().clone()
    engine.step()
    # Unscaled gradient: 1 per entry, norm 2, clipped to norm 1.
    torch.testing.assert_close(model.head.weight, weight - 0.1 * 0.5)
    assert engine.monitor.last_total_norm == 2.0
