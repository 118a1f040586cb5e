"""Health statistics: declaration, publication, collection."""
import pytest
import torch

from engine_plugins.engine.sanity import health
from engine_plugins.engine.sanity.health import HealthStat, stat_for


def test_names_with_loss_and_conflicting_ranges_are_refused():
    with pytest.raises(ValueError, match="must not contain 'loss'"):
        HealthStat('health/loss_ratio')
    HealthStat('health/test_twice', low=0.0, high=1.0)
    HealthStat('health/test_twice', low=0.0, high=1.0)  # same: fine
    with pytest.raises(ValueError, match='already declared with range'):
        HealthStat('health/test_twice', low=0.0, high=2.0)


def test_publish_outside_a_training_step_does_nothing():
    stat = HealthStat('health/test_idle')
    stat.publish(torch.tensor(3.0))
    with health.collect() as values:
        pass
    assert values == {}


def test_repeated_publications_average_over_their_counts():
    stat = HealthStat('health/test_mean')
    with health.collect() as values:
        stat.publish(torch.tensor(9.0), count=3)  # 3 items, mean 3
        stat.publish(torch.tensor(1.0), count=1)  # 1 item
        stat.publish(torch.tensor(0.5), suffix='d0')
    mean, count = values['health/test_mean']
    assert float(mean) == 2.5 and float(count) == 4  # (9 + 1) / 4
    assert float(values['health/test_mean/d0'][0]) == 0.5
    assert stat_for('health/test_mean/d0') is stat


def test_a_failed_step_leaves_no_stale_collection():
    stat = HealthStat('health/test_stale')
    health.start_collecting()
    stat.publish(torch.tensor(1.0))  # the forward pass then raised
    health.start_collecting()  # the next step
    assert health.stop_collecting() == {}


def test_violation_reads_the_range():
    stat = HealthStat('health/test_range', low=0.5, high=10.0)
    assert stat.violation(0.5) is None
    assert stat.violation(0.2) == '0.2 is outside its range [0.5, 10]'
