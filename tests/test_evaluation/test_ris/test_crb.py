"""The stochastic CRB against closed forms and Slepian-Bangs, and MUSIC's
efficiency against it."""
import numpy as np
import pytest

from engine_plugins.evaluation.ris import (MusicEstimator, crb_mse_deg2,
                                           matched_errors, stochastic_crb)
from engine_plugins.structures import ArrayGeometry


def _single_source_crb(m, theta_deg, snr, t):
    """ULA, d = 1/2, one source: the classic closed form
    CRB = 6 / (T pi^2 cos^2(theta) M (M^2 - 1)) (1/SNR + 1/(M SNR^2))."""
    c = np.cos(np.radians(theta_deg))
    scale = 6 / (t * np.pi**2 * c**2 * m * (m * m - 1))
    return scale * (1 / snr + 1 / (m * snr**2))


@pytest.mark.parametrize('theta,snr_db', [(20.0, 0.0), (-10.0, -20.0),
                                          (45.0, 10.0)])
def test_single_source_closed_form(theta, snr_db):
    snr = 10**(snr_db / 10)
    crb = stochastic_crb(ArrayGeometry(12, 1), [[theta]], np.eye(1),
                         1 / snr, 200)
    assert crb[0, 0] == pytest.approx(
        _single_source_crb(12, theta, snr, 200), rel=1e-10)


def _slepian_bangs(geo, angles_deg, src, noise, t):
    """Angle block of the inverse FIM ``T tr(R^-1 dR_i R^-1 dR_j)`` with
    every nuisance parameter (real diagonal and complex off-diagonal of
    P, sigma^2) unknown; derivatives by central differences."""
    k, dims = angles_deg.shape
    iu = np.triu_indices(k, 1)
    params = np.concatenate([
        np.radians(angles_deg).T.ravel(),
        np.diag(src).real, src[iu].real, src[iu].imag, [noise]
    ])

    def cov(p):
        ang = p[:dims * k].reshape(dims, k).T
        off = dims * k
        pm = np.diag(p[off:off + k]).astype(complex)
        n_off = len(iu[0])
        upper = p[off + k:off + k + n_off] + 1j * p[off + k + n_off:-1]
        pm[iu] = upper
        pm[iu[1], iu[0]] = upper.conj()
        a = geo.steering(ang)
        return a @ pm @ a.conj().T + p[-1] * np.eye(geo.dim)

    r_inv = np.linalg.inv(cov(params))
    h = 1e-6
    derivs = []
    for i in range(len(params)):
        step = np.zeros_like(params)
        step[i] = h
        derivs.append((cov(params + step) - cov(params - step)) / (2 * h))
    fim = np.array([[
        t * np.trace(r_inv @ di @ r_inv @ dj).real for dj in derivs
    ] for di in derivs])
    return np.linalg.inv(fim)[:dims * k, :dims * k]


def test_ula_two_sources_hand_checked_case():
    # M = 12, K = 2 at -10 / 20 deg, T = 200, 0 dB, uncorrelated.
    geo = ArrayGeometry(12, 1)
    angles = np.array([[-10.0], [20.0]])
    crb = stochastic_crb(geo, angles, np.eye(2), 1.0, 200)
    np.testing.assert_allclose(
        crb, _slepian_bangs(geo, angles, np.eye(2), 1.0, 200), rtol=1e-5)
    # 30 deg apart (> 3 beamwidths): each source nearly as if alone.
    for i, theta in enumerate((-10.0, 20.0)):
        assert crb[i, i] == pytest.approx(
            _single_source_crb(12, theta, 1.0, 200), rel=0.05)
    # sqrt of the mean, in degrees: the figure MUSIC is compared with.
    assert np.sqrt(crb_mse_deg2(geo, angles, np.eye(2), 1.0,
                                200)) == pytest.approx(0.0840, abs=1e-4)


def test_upa_correlated_sources_match_slepian_bangs():
    geo = ArrayGeometry(3, 3)
    angles = np.array([[10.0, -5.0], [-25.0, 15.0]])
    src = np.array([[1.0, 0.4 + 0.2j], [0.4 - 0.2j, 2.0]])
    crb = stochastic_crb(geo, angles, src, 0.5, 50)
    np.testing.assert_allclose(
        crb, _slepian_bangs(geo, angles, src, 0.5, 50), rtol=1e-5)


def _music_rmse(snr_db, trials=300):
    geo = ArrayGeometry(12, 1)
    angles = np.array([[-10.0], [20.0]])
    a = geo.steering(np.radians(angles))
    music = MusicEstimator(geo, grid_step=0.5)
    rng = np.random.default_rng(0)
    noise = 10**(-snr_db / 10)
    se = count = 0
    for _ in range(trials):
        s = (rng.standard_normal((2, 200)) +
             1j * rng.standard_normal((2, 200))) / np.sqrt(2)
        n = (rng.standard_normal((12, 200)) +
             1j * rng.standard_normal((12, 200))) * np.sqrt(noise / 2)
        x = a @ s + n
        e, c = matched_errors(music.estimate(x @ x.conj().T / 200, 2), angles)
        se, count = se + e, count + c
    bound = np.sqrt(crb_mse_deg2(geo, angles, np.eye(2), noise, 200))
    return np.sqrt(se / count), bound


@pytest.mark.slow
def test_music_near_crb_at_0db_not_at_minus_20db():
    rmse, bound = _music_rmse(0.0)
    assert rmse < 1.1 * bound, (rmse, bound)
    rmse, bound = _music_rmse(-20.0)
    assert rmse > 1.1 * bound, (rmse, bound)  # below MUSIC's threshold


def test_matched_errors_by_hand():
    est = np.array([[21.0, 0.0], [-9.0, 2.0]])
    true = np.array([[-10.0, 0.0], [20.0, 0.0]])
    # Hungarian pairs (21,0)->(20,0) and (-9,2)->(-10,0): 1 + 1 + 4.
    assert matched_errors(est, true) == (6.0, 4)
    with pytest.raises(ValueError, match='1 estimates for 2 sources'):
        matched_errors(est[:1], true)
