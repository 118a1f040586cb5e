"""Forward-backward spatial smoothing: by hand on a ULA, and it restores
the rank that coherent sources take away."""
import numpy as np
import pytest

from engine_plugins.evaluation.ris import (MusicEstimator,
                                           fb_spatial_smoothing,
                                           matched_errors, subarray_shape)
from engine_plugins.structures import ArrayGeometry


def test_ula_by_hand():
    geo = ArrayGeometry(3, 1)
    r = np.array([[1, 2 + 1j, 3], [2 - 1j, 4, 5j], [3, -5j, 6]])
    forward = (r[:2, :2] + r[1:, 1:]) / 2
    # J F* J: conjugate, both indices reversed.
    backward = np.array([[forward[1, 1], forward[1, 0]],
                         [forward[0, 1], forward[0, 0]]]).conj()
    np.testing.assert_allclose(
        fb_spatial_smoothing(r, geo, 2, 1), (forward + backward) / 2)


def test_upa_subarrays_follow_the_element_order():
    geo = ArrayGeometry(3, 2)  # element p * 2 + q
    r = np.arange(36, dtype=np.complex128).reshape(6, 6)
    # The 2x2 subarrays at (0, 0) and (1, 0) hold elements 0,1,2,3 and
    # 2,3,4,5.
    forward = (r[np.ix_([0, 1, 2, 3], [0, 1, 2, 3])] +
               r[np.ix_([2, 3, 4, 5], [2, 3, 4, 5])]) / 2
    expected = (forward + forward.conj()[::-1, ::-1]) / 2
    np.testing.assert_allclose(fb_spatial_smoothing(r, geo, 2, 2), expected)


def test_subarray_shape():
    assert subarray_shape(ArrayGeometry(8, 8), 1) == (8, 8)
    assert subarray_shape(ArrayGeometry(8, 8), 2) == (7, 7)  # 4 subarrays
    assert subarray_shape(ArrayGeometry(8, 8), 4) == (7, 7)
    assert subarray_shape(ArrayGeometry(8, 8), 5) == (6, 6)  # 9 subarrays
    assert subarray_shape(ArrayGeometry(10, 1), 4) == (7, 1)
    with pytest.raises(ValueError, match='RIS measurement manifold'):
        subarray_shape(ArrayGeometry(4, 4, ris_measurements=8), 2)


def test_smoothing_resolves_coherent_sources_music_cannot():
    geo = ArrayGeometry(10, 1)
    angles = np.array([[-10.0], [12.0]])
    rng = np.random.default_rng(0)
    a = geo.steering(np.radians(angles))
    signal = rng.standard_normal(200) + 1j * rng.standard_normal(200)
    # Two coherent paths of one signal (the second delayed in phase), 20 dB.
    x = np.outer(a[:, 0] + np.exp(0.7j) * a[:, 1], signal)
    x += 0.1 * (
        rng.standard_normal(x.shape) + 1j * rng.standard_normal(x.shape))
    cov = x @ x.conj().T / 200
    music = MusicEstimator(geo, grid_step=0.5)
    plain, n = matched_errors(music.estimate(cov, 2), angles)
    shape = subarray_shape(geo, 2)
    sub = MusicEstimator(ArrayGeometry(*shape), grid_step=0.5)
    fbss, _ = matched_errors(
        sub.estimate(fb_spatial_smoothing(cov, geo, *shape), 2), angles)
    assert np.sqrt(fbss / n) < 0.5
    assert np.sqrt(plain / n) > 5 * np.sqrt(fbss / n)
