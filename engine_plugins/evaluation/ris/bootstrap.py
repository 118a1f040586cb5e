"""Bootstrap intervals for RMSEs over scenes.

Scenes are resampled with replacement; an RMSE is recomputed from the
resampled scenes' squared errors and component counts, so a scene with
several sources keeps its sources together. Differences between two
estimators are resampled in pairs (the same scenes for both), which is
what makes "A is worse than B" testable on a shared test set.
"""
from typing import Sequence, Tuple

import numpy as np


def _resampled_rmse(sq: np.ndarray, count: np.ndarray,
                    index: np.ndarray) -> np.ndarray:
    return np.sqrt(sq[index].sum(-1) / count[index].sum(-1))


def bootstrap_indices(num: int, resamples: int,
                      rng: np.random.Generator) -> np.ndarray:
    """``(resamples, num)`` scene indices drawn with replacement."""
    return rng.integers(0, num, (resamples, num))


def rmse_interval(sq: Sequence[float],
                  count: Sequence[int],
                  index: np.ndarray,
                  level: float = 0.95) -> Tuple[float, float, float]:
    """RMSE ``sqrt(sum sq / sum count)`` and its percentile bootstrap
    interval at ``level`` over the resamples in ``index``."""
    sq, count = np.asarray(sq, float), np.asarray(count, float)
    rmse = float(np.sqrt(sq.sum() / count.sum()))
    tail = 50 * (1 - level)
    lo, hi = np.percentile(
        _resampled_rmse(sq, count, index), [tail, 100 - tail])
    return rmse, float(lo), float(hi)


def difference_interval(sq_a: Sequence[float],
                        sq_b: Sequence[float],
                        count: Sequence[int],
                        index: np.ndarray,
                        level: float = 0.95) -> Tuple[float, float, float]:
    """``RMSE_a - RMSE_b`` on the same scenes and its paired percentile
    bootstrap interval."""
    sq_a, sq_b = np.asarray(sq_a, float), np.asarray(sq_b, float)
    count = np.asarray(count, float)
    diff = float(
        np.sqrt(sq_a.sum() / count.sum()) - np.sqrt(sq_b.sum() / count.sum()))
    resampled = (
        _resampled_rmse(sq_a, count, index) -
        _resampled_rmse(sq_b, count, index))
    tail = 50 * (1 - level)
    lo, hi = np.percentile(resampled, [tail, 100 - tail])
    return diff, float(lo), float(hi)
