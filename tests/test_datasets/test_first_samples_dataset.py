import pytest

from engine_plugins.datasets import FirstSamplesDataset


def test_first_samples_repeat_in_order():
    ds = FirstSamplesDataset(list(range(10)), num_samples=3, times=2)
    assert len(ds) == 6
    assert [ds[i] for i in range(6)] == [0, 1, 2, 0, 1, 2]
    with pytest.raises(IndexError, match='index 6 out of range'):
        ds[6]


def test_builds_from_config_and_clips_to_dataset_length():
    from mmengine.registry import init_default_scope

    import tests.toy_task  # noqa: F401
    init_default_scope('engine_plugins')
    ds = FirstSamplesDataset(
        dict(type='ToyRegressionDataset', num_samples=4), num_samples=10)
    assert len(ds) == 4
    assert ds.metainfo == dict(task='toy_regression')
    with pytest.raises(ValueError, match='must be >= 1'):
        FirstSamplesDataset([1], num_samples=0)
