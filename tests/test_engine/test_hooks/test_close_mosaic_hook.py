"""CloseMosaicHook switches the innermost pipeline for the last epochs."""
from unittest.mock import Mock

import pytest
from mmengine.registry import init_default_scope

from engine_plugins.datasets import FirstSamplesDataset
from engine_plugins.engine.hooks import CloseMosaicHook


class _Data:

    def __init__(self):
        self.pipeline = 'mosaic'

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return i


def _runner(dataset, epoch, max_epochs=10):
    loader = Mock(dataset=dataset, persistent_workers=True)
    loader._iterator = object()
    return Mock(epoch=epoch, max_epochs=max_epochs, train_dataloader=loader)


def test_switches_at_max_epochs_minus_n_through_a_wrapper():
    init_default_scope('engine_plugins')
    inner = _Data()
    wrapped = FirstSamplesDataset(inner, num_samples=2)
    hook = CloseMosaicHook(
        num_last_epochs=3, switch_pipeline=[dict(type='RandomFlip', prob=0.5)])
    for epoch in range(7):  # epochs 0..6 keep mosaic
        hook.before_train_epoch(_runner(wrapped, epoch))
    assert inner.pipeline == 'mosaic'
    runner = _runner(wrapped, 7)
    hook.before_train_epoch(runner)
    assert type(inner.pipeline).__name__ == 'Compose'
    assert 'RandomFlip' in repr(inner.pipeline)
    # Persistent workers are restarted with the new pipeline.
    assert runner.train_dataloader._iterator is None


def test_resume_past_the_switch_point_switches_at_once():
    init_default_scope('engine_plugins')
    data = _Data()
    hook = CloseMosaicHook(num_last_epochs=2, switch_pipeline=[])
    hook.before_train_epoch(_runner(data, 9))
    assert data.pipeline != 'mosaic'


def test_negative_epochs_rejected():
    with pytest.raises(ValueError, match='num_last_epochs must be >= 0'):
        CloseMosaicHook(num_last_epochs=-1, switch_pipeline=[])
