"""Bootstrap intervals of RMSEs, on cases whose resamples are known."""
import numpy as np
import pytest

from engine_plugins.evaluation.ris.bootstrap import (bootstrap_indices,
                                                     difference_interval,
                                                     rmse_interval)


def test_two_scenes_enumerable():
    # Scenes with squared errors 0 and 4 (one component each): resamples
    # are {0, 0} (RMSE 0, p 1/4), mixed (sqrt 2, p 1/2), {4, 4} (2, p 1/4).
    index = bootstrap_indices(2, 4000, np.random.default_rng(0))
    rmse, lo, hi = rmse_interval([0.0, 4.0], [1, 1], index)
    assert rmse == pytest.approx(np.sqrt(2))
    assert (lo, hi) == (0.0, 2.0)
    _, lo, hi = rmse_interval([0.0, 4.0], [1, 1], index, level=0.4)
    assert lo == hi == pytest.approx(np.sqrt(2))


def test_counts_weight_scenes():
    # A scene with 3 sources x 2 components counts 6 components.
    index = bootstrap_indices(2, 10, np.random.default_rng(0))
    rmse, _, _ = rmse_interval([6.0, 2.0], [6, 2], index)
    assert rmse == pytest.approx(1.0)


def test_paired_difference():
    rng = np.random.default_rng(1)
    index = bootstrap_indices(50, 1000, rng)
    sq = rng.uniform(0, 1, 50)
    count = np.full(50, 2)
    # The same errors: the difference is 0 in every resample.
    assert difference_interval(sq, sq, count, index) == (0.0, 0.0, 0.0)
    # Errors doubled (RMSE x sqrt 2) in every scene: the paired interval
    # is strictly positive.
    diff, lo, hi = difference_interval(2 * sq, sq, count, index)
    base, base_lo, base_hi = rmse_interval(sq, count, index)
    assert diff == pytest.approx((np.sqrt(2) - 1) * base)
    assert 0 < lo <= diff <= hi
