"""Alternating-projection DML search: its incremental fit against a direct
projection, its answer against an exhaustive search over all pairs, and
coherent sources, which defeat MUSIC but not the DML fit."""
import itertools

import numpy as np
import pytest

from engine_plugins.datasets.ris.simulation import simulate_scene
from engine_plugins.evaluation.ris import (DMLSearch, MusicEstimator,
                                           residual_power)
from engine_plugins.structures import ArrayGeometry

ULA8 = ArrayGeometry(8, 1)


def _search(geometry=ULA8, step=1.0):
    return DMLSearch(MusicEstimator(geometry, grid_step=step))


def test_gain_is_the_drop_of_the_residual_power():
    """gain(a | F) = c(F) - c(F + a), with c computed by a direct QR
    projection, for every grid direction not skipped."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 6)) + 1j * rng.standard_normal((8, 6))
    cov = x @ x.conj().T / 6  # rank 6 < D = 8
    search = _search(step=5.0)
    grid = search.music.grid
    fixed = [3, 17]
    gain = search.gain(cov, search.factor(cov), fixed)
    base = residual_power(ULA8, cov, grid[fixed])
    kept = np.isfinite(gain)
    assert kept.sum() >= len(grid) - 8  # only near-repeats are skipped
    for g in np.flatnonzero(kept):
        direct = base - residual_power(ULA8, cov, grid[fixed + [g]])
        assert gain[g] == pytest.approx(direct, rel=1e-9, abs=1e-9)
    # Without fixed directions the gain is a^H R a / |a|^2.
    a = ULA8.steering(np.radians(grid))
    bartlett = np.einsum('dg,de,eg->g', a.conj(), cov, a).real / 8
    np.testing.assert_allclose(
        search.gain(cov, search.factor(cov), []), bartlett, rtol=1e-12)


@pytest.mark.parametrize('seed', range(6))
def test_two_sources_match_an_exhaustive_pair_search(seed):
    """Few snapshots at low SNR, where MUSIC's eigenvectors are noisy:
    the alternating projection reaches the best pair of a 2-degree grid
    (found here by trying all 1830 pairs) in every seeded scene."""
    rng = np.random.default_rng(seed)
    scene = simulate_scene(ULA8, rng, num_sources=2, num_snapshots=4,
                           snr_db=-5.0, min_separation=5.0)
    search = _search(step=2.0)
    grid = search.music.grid
    found = search(scene['cov'], 2)
    best = min((residual_power(ULA8, scene['cov'], grid[list(p)]), p)
               for p in itertools.combinations(range(len(grid)), 2)
               if abs(grid[p[0], 0] - grid[p[1], 0]) >= 2.0)
    assert residual_power(ULA8, scene['cov'], found) == pytest.approx(
        best[0], rel=1e-12)


def test_coherent_pair_found_where_music_fails():
    """R = (a1 + a2)(a1 + a2)^H + 0.1 I has one signal eigenvector, so
    MUSIC with K = 2 misses a source. The DML fit is exact only on the
    span of a1 and a2 (three steering vectors of a ULA are independent),
    c = 0.1 * (8 - 2) = 0.6, and the search finds that pair."""
    a = ULA8.steering(np.radians([[-20.0], [25.0]]))
    v = a[:, :1] + a[:, 1:]
    cov = v @ v.conj().T + 0.1 * np.eye(8)
    search = _search(step=1.0)
    found = search(cov, 2)
    np.testing.assert_array_equal(np.sort(found[:, 0]), [-20.0, 25.0])
    assert residual_power(ULA8, cov, found) == pytest.approx(0.6)
    music = search.music.estimate(cov, 2)
    assert np.abs(np.sort(music[:, 0]) - [-20, 25]).max() > 5


def test_one_source_is_the_bartlett_peak_and_start_is_kept():
    ura = ArrayGeometry(4, 4)
    a = ura.steering(np.radians([[12.0, -7.0]]))
    cov = a @ a.conj().T + 0.5 * np.eye(16)
    search = _search(ura, step=1.0)
    np.testing.assert_array_equal(search(cov, 1), [[12.0, -7.0]])
    # A start already at the optimum stays; a start off the grid snaps.
    a2 = ura.steering(np.radians([[12.0, -7.0], [-30.0, 10.0]]))
    cov2 = a2 @ a2.conj().T + 0.5 * np.eye(16)
    found = search(cov2, 2, start=[[-29.6, 10.2], [40.0, 0.0]])
    np.testing.assert_array_equal(
        found[np.argsort(found[:, 0])], [[-30.0, 10.0], [12.0, -7.0]])
