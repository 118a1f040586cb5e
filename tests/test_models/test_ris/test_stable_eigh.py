"""The gap-regularized eigh backward against autograd."""
import pytest
import torch

from engine_plugins.models.ris import StableEigh, load_diagonal, stable_eigh


def _hermitian(values, seed=0, dtype=torch.complex128):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(len(values), len(values), dtype=dtype, generator=gen)
    q, _ = torch.linalg.qr(x)
    return (q * torch.tensor(values, dtype=torch.float64).to(dtype)) @ q.mH


def _loss(eig, matrix, weight):
    """Phase-invariant: a projector on the top-2 subspace plus eigenvalues;
    also uses single eigenvectors through |v|^2."""
    values, vectors = eig(matrix)
    top = vectors[..., -2:]
    proj = top @ top.mH
    return ((proj * weight).sum().real + values.square().sum() +
            vectors[:, -1].abs().pow(4).sum())


def test_matches_autograd_on_separated_spectrum():
    matrix = _hermitian([1.0, 2.0, 3.5, 5.0, 8.0, 13.0]).requires_grad_()
    weight = _hermitian([0.3, -1.0, 2.0, 0.5, 1.5, -0.7], seed=1)
    exact, = torch.autograd.grad(
        _loss(torch.linalg.eigh, matrix, weight), matrix)
    ours, = torch.autograd.grad(
        _loss(lambda m: StableEigh.apply(m, 1e-6), matrix, weight), matrix)
    # Smallest gap 1.0: the Lorentzian factor differs by (1e-6)^2.
    torch.testing.assert_close(ours, exact, rtol=1e-10, atol=1e-10)


def test_batched_real_symmetric():
    matrix = torch.stack([
        _hermitian([1.0, 2.0, 4.0], seed=s, dtype=torch.float64)
        for s in range(3)
    ]).requires_grad_()

    def loss(eig):
        values, vectors = eig(matrix)
        return (vectors[..., -1:] @ vectors[..., -1:].mT).triu().sum() + \
            values.sum()

    exact, = torch.autograd.grad(loss(torch.linalg.eigh), matrix)
    ours, = torch.autograd.grad(loss(stable_eigh), matrix)
    torch.testing.assert_close(ours, exact, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize('rotated', [False, True])
def test_finite_on_degenerate_spectrum(rotated):
    # Eigenvalue 2.0 repeated and the loss picks one eigenvector of the
    # pair: autograd divides by a zero gap (exactly 0 for the diagonal
    # matrix: NaN; ~1e-15 after a rotation: ~1e13).
    values = [1.0, 2.0, 2.0, 5.0]
    matrix = (_hermitian(values) if rotated else torch.diag(
        torch.tensor(values, dtype=torch.complex128))).requires_grad_()

    def loss(eig):
        _, vectors = eig(matrix)
        return vectors[:, -2:].abs().pow(4).sum()

    exact, = torch.autograd.grad(loss(torch.linalg.eigh), matrix)
    assert not torch.isfinite(exact).all() or exact.abs().max() > 1e10
    ours, = torch.autograd.grad(loss(lambda m: stable_eigh(m, 1e-3)), matrix)
    assert torch.isfinite(ours).all()
    # Bounded by the regularization: |1 / gap| <= 1 / (2 eps).
    assert ours.abs().max() < 1e4


def test_large_loss_scale_passes_where_phase_check_fails():
    # GradScaler's scale (2^16 at the start, doubled every 2000 clean
    # steps) trips torch's eigenvector-phase check on rounding noise alone
    # (complex64). 2^16 is borderline and CPU-dependent; 2^20 trips it.
    x = torch.randn(16, 16, dtype=torch.complex64,
                    generator=torch.Generator().manual_seed(0))
    matrix = (x @ x.mH).requires_grad_()

    def scaled(eig):
        _, vectors = eig(matrix)
        top = vectors[:, -3:]
        return 2.0**20 * (top @ top.mH).real.sum()

    with pytest.raises(RuntimeError, match='e\\^{i phi}'):
        scaled(torch.linalg.eigh).backward()
    matrix.grad = None
    scaled(lambda m: stable_eigh(m, 1e-4)).backward()
    assert torch.isfinite(matrix.grad).all()


def test_load_diagonal_splits_repeated_eigenvalues():
    eye = torch.eye(4, dtype=torch.complex64)
    values = torch.linalg.eigvalsh(load_diagonal(eye, 0.5, 0.4))
    # 1 + 0.5 + 0.4 * i / 4 for i = 0..3
    torch.testing.assert_close(values, torch.tensor([1.5, 1.6, 1.7, 1.8]))
