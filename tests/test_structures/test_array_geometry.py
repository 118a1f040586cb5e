"""Steering vectors against closed forms."""
import numpy as np
import pytest

from engine_plugins.structures import ArrayGeometry, ula_response


def test_ula_half_wavelength_closed_form():
    # d = 1/2: a_n = exp(j pi n sin(az)); at 30 deg sin = 1/2, so the
    # phase advances by pi/2 per element: 1, j, -1, -j.
    geo = ArrayGeometry(rows=4, cols=1)
    a = geo.steering(np.radians([[30.0]]))[:, 0]
    np.testing.assert_allclose(a, [1, 1j, -1, -1j], atol=1e-12)
    assert geo.angle_dims == 1 and geo.dim == 4
    # Broadside: all ones.
    np.testing.assert_allclose(
        geo.steering(np.zeros((1, 1)))[:, 0], np.ones(4), atol=1e-12)


def test_upa_is_kronecker_of_ulas():
    geo = ArrayGeometry(rows=3, cols=2, spacing=0.5)
    az, el = np.radians(20.0), np.radians(-10.0)
    a = geo.steering(np.array([[az, el]]))[:, 0]
    u, v = np.cos(el) * np.sin(az), np.sin(el)
    # Element (p, q) is at index p * Q + q with phase pi (p u + q v).
    for p in range(3):
        for q in range(2):
            assert a[p * 2 + q] == pytest.approx(
                np.exp(1j * np.pi * (p * u + q * v)), abs=1e-12)
    np.testing.assert_allclose(
        a,
        np.kron(ula_response(3, [u])[:, 0], ula_response(2, [v])[:, 0]),
        atol=1e-12)


def test_endfire_full_wavelength_is_grating_lobe():
    # d = 1 at az = 90 deg: every phase is a multiple of 2 pi.
    geo = ArrayGeometry(rows=5, cols=1, spacing=1.0)
    np.testing.assert_allclose(
        geo.steering(np.radians([[90.0]]))[:, 0], np.ones(5), atol=1e-9)


@pytest.mark.parametrize('rows,cols,ris', [(4, 1, None), (3, 3, None),
                                           (3, 2, 5)])
def test_derivatives_match_finite_differences(rows, cols, ris):
    geo = ArrayGeometry(rows, cols, ris_measurements=ris)
    angles = np.radians([[12.0, -7.0], [-40.0, 25.0]])[:, :geo.angle_dims]
    deriv = geo.steering_derivatives(angles)
    h = 1e-6
    for i in range(geo.angle_dims):
        step = np.zeros_like(angles)
        step[:, i] = h
        numeric = (geo.steering(angles + step) -
                   geo.steering(angles - step)) / (2 * h)
        np.testing.assert_allclose(deriv[i], numeric, atol=1e-6)


def test_ris_manifold_is_phase_profiles_times_elements():
    geo = ArrayGeometry(4, 4, ris_measurements=6, ris_seed=3)
    angles = np.radians([[10.0, 5.0]])
    assert geo.dim == 6 and geo.phi.shape == (6, 16)
    np.testing.assert_allclose(np.abs(geo.phi), 0.25)  # unit modulus/sqrt(M)
    np.testing.assert_allclose(
        geo.steering(angles), geo.phi @ geo.element_steering(angles))
    # The same seed gives the same surface (train/val/test share it).
    np.testing.assert_array_equal(
        geo.phi,
        ArrayGeometry(4, 4, ris_measurements=6, ris_seed=3).phi)


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match='2 components for a 4x4'):
        ArrayGeometry(4, 4).steering(np.zeros((2, 1)))
    with pytest.raises(ValueError, match='rows=M, cols=1'):
        ArrayGeometry(1, 4)
