"""The learning rate during the run."""
import torch

from engine_plugins.engine.sanity.lr_watch import lr_at_zero, lr_growth


def _optimizer(*lrs):
    params = [torch.zeros(1, requires_grad=True) for _ in lrs]
    return torch.optim.SGD([dict(params=[p], lr=lr)
                            for p, lr in zip(params, lrs)], lr=lrs[0])


def test_lr_at_zero_with_iterations_left():
    assert lr_at_zero(_optimizer(0.1, 0.0), 5, 100) is None
    found = lr_at_zero(_optimizer(0.0, 0.0), 60, 100)
    assert found.startswith('the learning rate is 0 in every param group at '
                            'iteration 60, 40 iterations before the end')
    assert lr_at_zero(_optimizer(0.0), 100, 100) is None  # the last step


def test_lr_growth_against_the_configured_base_and_a_cyclic_peak():
    optimizer = _optimizer(0.5, 0.1)
    for group, base in zip(optimizer.param_groups, (0.05, 0.1)):
        group['initial_lr'] = base
    assert lr_growth(optimizer) == (0.5, 0.05, 10.0)
    optimizer.param_groups[0]['max_lr'] = 0.5  # a one-cycle peak
    assert lr_growth(optimizer) is None
