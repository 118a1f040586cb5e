"""Loss values by hand, and the FP32 region's casting rules on the real
model (predictions and labels)."""
import numpy as np
import pytest
import torch
from mmengine.dataset import default_collate

from engine_plugins.datasets.ris import ArrayGeometry, RISDoADataset
from engine_plugins.models.ris import (RISCovarianceNet, frobenius_loss,
                                       music_loss, predicted_projector,
                                       steering_projector, subspace_loss)

GEOMETRY = dict(rows=3, cols=3)


def _batch(n=4):
    ds = RISDoADataset(
        geometry=GEOMETRY,
        num_sources=(1, 2),
        num_snapshots=16,
        snr_db=[10.0],
        split='val',
        num_samples=n)
    return default_collate([ds[i] for i in range(n)])


def test_frobenius_by_hand():
    eye = torch.eye(3, dtype=torch.complex64)[None]
    # ||2I - I||^2 / ||I||^2 = 1; ||(1+j) I - I||^2 / 3 = 1.
    assert frobenius_loss(2 * eye, eye).item() == pytest.approx(1.0)
    assert frobenius_loss((1 + 1j) * eye, eye).item() == pytest.approx(1.0)


def test_subspace_and_music_losses_on_ideal_covariance():
    geo = ArrayGeometry(**GEOMETRY)
    angles = np.radians([[10.0, 0.0], [-30.0, 20.0]])
    a = torch.as_tensor(geo.steering(angles), dtype=torch.complex64)[None]
    cov = a @ a.mH + 0.1 * torch.eye(9)
    k = torch.tensor([2])
    valid = torch.tensor([[True, True]])
    proj = predicted_projector(cov, k, loading=0, jitter=0, gap_eps=1e-6)
    target = steering_projector(a, valid)
    assert subspace_loss(proj, target, k).item() == pytest.approx(0, abs=1e-5)
    assert music_loss(proj, a, valid).item() == pytest.approx(0, abs=1e-5)
    # The orthogonal complement of span(A) captures none of the true
    # steering vectors: music loss 1. Against an empty projector the
    # subspace loss is ||P||^2 / 2K = K / 2K = 1/2.
    eye = torch.eye(9, dtype=torch.complex64)[None]
    assert music_loss(eye - target, a, valid).item() == pytest.approx(
        1, abs=1e-5)
    assert subspace_loss(target, torch.zeros_like(target),
                         k).item() == pytest.approx(0.5, abs=1e-5)
    # Two orthogonal 1-D subspaces: ||P1 - P2||^2 / 2 = (1 + 1) / 2 = 1.
    e = torch.eye(9, dtype=torch.complex64)
    p1, p2 = e[:, :1] @ e[:, :1].mH, e[:, 1:2] @ e[:, 1:2].mH
    assert subspace_loss(p1[None], p2[None],
                         torch.tensor([1])).item() == pytest.approx(1.0)


def test_model_output_is_hermitian_psd_with_trace_d():
    model = RISCovarianceNet(geometry=GEOMETRY, hidden=(32, ), rank=2)
    batch = _batch()
    cov = model.covariance(model(batch['inputs']))
    torch.testing.assert_close(cov, cov.mH)
    values = torch.linalg.eigvalsh(cov)
    assert values.min() > 0  # rank 2 + eps I: PSD, noise floor > 0
    torch.testing.assert_close(
        cov.diagonal(dim1=-2, dim2=-1).real.sum(-1), torch.full((4, ), 9.))


def _spy(model):
    seen = {}
    original = model._losses

    def spy(factor, labels):
        seen['factor'] = factor.dtype
        seen.update({k: v.dtype for k, v in labels.items()})
        out = original(factor, labels)
        seen['out'] = {k: v.dtype for k, v in out.items()}
        return out

    model._losses = spy
    return seen


@pytest.mark.parametrize('half', [torch.float16, torch.bfloat16])
@pytest.mark.parametrize('loss_dtype,real,cplx',
                         [('float32', torch.float32, torch.complex64),
                          ('float64', torch.float64, torch.complex128)])
def test_region_casts_predictions_and_labels(half, loss_dtype, real, cplx):
    model = RISCovarianceNet(
        geometry=GEOMETRY,
        hidden=(32, ),
        loss_weights=dict(music=1.0),
        loss_dtype=loss_dtype)
    seen = _spy(model)
    batch = _batch()
    labels = dict(batch['data_samples'])
    labels['cov_true'] = labels['cov_true'].to(torch.complex32)
    labels['angles'] = labels['angles'].to(half)
    factor = model(batch['inputs']).to(half)
    losses = model.loss_by_feat(factor, labels)
    assert seen['factor'] == real
    assert seen['angles'] == real
    assert seen['cov_true'] == cplx  # complex32 in, complex64/128 out
    assert seen['steering'] == cplx
    assert seen['num_sources'] == torch.int64  # integers untouched
    assert set(seen['out'].values()) == {real}
    assert all(torch.isfinite(v) for v in losses.values())


def test_complex32_refused_without_region():
    model = RISCovarianceNet(
        geometry=GEOMETRY, hidden=(32, ), fp32_loss_region=False)
    batch = _batch()
    labels = dict(batch['data_samples'])
    labels['cov_true'] = labels['cov_true'].to(torch.complex32)
    with pytest.raises(TypeError, match=r'cov_true \(torch.complex32\).*'
                       'FP32 loss region'):
        model.loss_by_feat(model(batch['inputs']), labels)


def test_unknown_loss_term_is_named():
    with pytest.raises(KeyError, match=r"\['musik'\]; valid"):
        RISCovarianceNet(geometry=GEOMETRY, loss_weights=dict(musik=1.0))


def test_residual_model_starts_from_the_sample_covariance():
    torch.manual_seed(0)
    model = RISCovarianceNet(geometry=GEOMETRY, hidden=(32, ), residual=True,
                             eps=1e-6)
    batch = _batch()
    cov = model.covariance(model(batch['inputs']))
    # L L^H of U sqrt(Lambda) is the input; the near-zero last layer
    # perturbs it by ~1e-3 (trace 9 either way).
    torch.testing.assert_close(
        cov, batch['data_samples']['cov'], atol=5e-3, rtol=0)
    with pytest.raises(ValueError, match='residual=True needs rank == D'):
        RISCovarianceNet(geometry=GEOMETRY, rank=2, residual=True)
