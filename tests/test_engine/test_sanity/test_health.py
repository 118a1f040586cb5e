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


def test_wilson_interval_matches_hand_computed_values():
    from engine_plugins.engine.sanity.health import wilson_interval

    # 1 of 4 at 95%: centre (0.25 + 1.96^2/8) / (1 + 1.96^2/4) = 0.37247,
    # half-width 1.96 * sqrt(0.25 * 0.75 / 4 + 1.96^2 / 64) / 1.9604.
    lower, upper = wilson_interval(0.25, 4)
    assert lower == pytest.approx(0.0456, abs=1e-4)
    assert upper == pytest.approx(0.6994, abs=1e-4)
    # 0 of 10: the lower end is 0, the upper 1.96^2 / (10 + 1.96^2).
    lower, upper = wilson_interval(0.0, 10)
    assert lower == 0.0
    assert upper == pytest.approx(3.8416 / 13.8416, abs=1e-4)


def test_fraction_statistic_tolerates_sampling_noise_only():
    stat = HealthStat(
        'health/test_fraction_share', low=0.0, high=0.2, fraction=True)
    # One of four samples: the 95% interval [0.046, 0.70] reaches the range.
    assert stat.violation(0.25, count=4) is None
    # Four of four: the interval [0.51, 1] lies above it.
    message = stat.violation(1.0, count=4)
    assert '4 of 4' in message and 'outside its range [0, 0.2]' in message
    # 40 of 64 (0.625): [0.50, 0.73], out of range.
    assert stat.violation(40 / 64, count=64) is not None
    # Without a count, the plain range applies.
    assert stat.violation(0.25) is not None
    # A statistic that is not a fraction keeps the plain range.
    plain = HealthStat('health/test_plain_share', low=0.0, high=0.2)
    assert plain.violation(0.25, count=4) is not None
