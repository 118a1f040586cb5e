"""Divergence tracking and the learning-rate description."""
import torch
from mmengine.optim.scheduler import LinearLR

from engine_plugins.engine.sanity.divergence import (DivergenceTracker,
                                                     describe_lr)


def test_gradient_norm_growth_over_its_own_floor():
    tracker = DivergenceTracker(grad_factor=100, loss_factor=1e9, window=3)
    # Norms fall to a floor of 1 (first reached as the median of
    # iterations 2-4: 4, 1, 1), then grow.
    norms = [8, 4, 1, 1, 1, 10, 60, 150, 300]
    found = [tracker.update(i + 1, 1.0, g) for i, g in enumerate(norms)]
    assert found[:8] == [None] * 8
    assert found[8] == ('the gradient norm grew 1.5e+02x, from 1 at '
                        'iterations 2-4 to 150')


def test_loss_growth_over_its_start():
    tracker = DivergenceTracker(grad_factor=1e9, loss_factor=10, window=2)
    found = [
        tracker.update(i, v, 1.0)
        for i, v in enumerate([2.0, 2.0, 5.0, 30.0, 40.0], 1)
    ]
    assert found[-1] == ('the loss grew 15x, from 2 over the first 2 '
                         'iterations to 30')


def test_describe_lr_names_current_base_and_warm_up():
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.5)
    assert describe_lr(optimizer) == 'lr 0.5 (base 0.5); no warm-up'
    warm_up = LinearLR(optimizer, start_factor=0.1, end=20, by_epoch=False)
    assert describe_lr(optimizer, [
        warm_up
    ]) == ('lr 0.05 (base 0.5); warm-up: LinearLR from 0.1x over iterations '
           '0-20')
