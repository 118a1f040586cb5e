"""Training the covariance net: overfitting a fixed set, AMP with the FP32
regions on, and the bf16 eigendecomposition failure (broken-zoo case 004)
reproduced with them off (through the broken zoo's runner helper, so the
sanity engine's diagnosis is the one users see)."""
import pytest
import torch
from mmengine.dataset import default_collate

from engine_plugins.datasets.ris import RISDoADataset
from engine_plugins.engine import NonFiniteGradError
from engine_plugins.models.ris import RISCovarianceNet
from engine_plugins.registry import MODELS
from tests.test_broken_zoo import _assert_trains, _losses, _run

GEOMETRY = dict(rows=3, cols=3)
TRAIN = dict(
    type='RISDoADataset',
    geometry=GEOMETRY,
    num_sources=1,
    num_snapshots=16,
    snr_db=(0.0, 20.0),
    num_samples=256)


@MODELS.register_module()
class RISDegenerateNet(RISCovarianceNet):
    """The bf16 eigh failure on the real model: the factor starts as two
    orthogonal columns with powers 1 and 1.002^2. bf16 rounds both to 1.0,
    so the top eigenvalue (K=1) of ``L L^H`` is exactly repeated."""

    def __init__(self, **kwargs) -> None:
        # Fixed structure; other arguments (region, stabilization) pass.
        kwargs.update(
            geometry=GEOMETRY,
            hidden=(8, ),
            rank=2,
            loss_weights=dict(frobenius=0.0, subspace=1.0, music=0.0))
        super().__init__(**kwargs)
        last = self.net[-1]
        bias = torch.zeros(2, 9, 2)
        bias[0, 0, 0], bias[0, 1, 1] = 1.0, 1.002
        with torch.no_grad():
            last.weight.zero_()
            last.bias.copy_(bias.flatten())


def test_overfits_a_fixed_small_set():
    torch.manual_seed(0)
    ds = RISDoADataset(
        geometry=GEOMETRY,
        num_sources=(1, 2),
        num_snapshots=8,
        snr_db=[0.0],
        split='val',
        num_samples=16)
    batch = default_collate([ds[i] for i in range(16)])
    model = RISCovarianceNet(
        geometry=GEOMETRY,
        hidden=(128, ),
        loss_weights=dict(frobenius=1.0, subspace=1.0, music=1.0))
    optim = torch.optim.Adam(model.parameters(), lr=3e-3)
    history = []
    for _ in range(150):
        losses = model(batch['inputs'], batch['data_samples'], mode='loss')
        total = sum(losses.values())
        optim.zero_grad()
        total.backward()
        optim.step()
        history.append({k: v.item() for k, v in losses.items()})
    for key in history[0]:
        assert history[-1][key] < history[0][key] / 10, (key, history[0],
                                                         history[-1])


@pytest.mark.slow
def test_bf16_with_regions_trains_with_finite_gradients(tmp_path):
    model = dict(
        type='RISCovarianceNet',
        geometry=GEOMETRY,
        hidden=(64, ),
        loss_weights=dict(frobenius=1.0, subspace=1.0, music=0.5))
    # The first 3 iterations are checked strictly: any NaN/Inf raises.
    runner = _run(tmp_path, model, TRAIN, iters=25, lr=3e-3, amp=True)
    assert runner.optim_wrapper.cast_dtype == torch.bfloat16
    _assert_trains(runner, factor=1.5)
    assert all(torch.isfinite(torch.tensor(_losses(runner))))


def test_fp16_grad_scaler_with_regions_gives_finite_gradients():
    # fp16 autocast on CPU with a real GradScaler at scale 2^16: the case
    # that trips torch's eigh phase check without the stabilized backward.
    torch.manual_seed(0)
    ds = RISDoADataset(**{k: v for k, v in TRAIN.items() if k != 'type'})
    model = RISCovarianceNet(
        geometry=GEOMETRY,
        hidden=(64, ),
        loss_weights=dict(frobenius=1.0, subspace=1.0, music=0.5))
    optim = torch.optim.Adam(model.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler('cpu', init_scale=2.0**16)
    for step in range(5):
        batch = default_collate([ds[i] for i in range(8)])
        with torch.autocast('cpu', dtype=torch.float16):
            losses = model(batch['inputs'], batch['data_samples'], 'loss')
        optim.zero_grad()
        scaler.scale(sum(losses.values())).backward()
        grads = [p.grad for p in model.parameters()]
        assert all(torch.isfinite(g).all() for g in grads), step
        scaler.step(optim)
        scaler.update()
    assert scaler.get_scale() == 2.0**16  # no step was skipped


@pytest.mark.slow
def test_regions_off_reproduces_seed004_and_is_named(tmp_path):
    broken = dict(
        type='RISDegenerateNet', fp32_loss_region=False, stabilize=False)
    with pytest.raises(NonFiniteGradError) as err:
        _run(tmp_path / 'broken', broken, TRAIN, amp=True, locate=True)
    message = str(err.value)
    # Loss 1 - |e_top^H a|^2 for a 3x3 array: 1 - 1/9 = 0.8889 (bf16).
    assert message.startswith(
        'non-finite gradients at iteration 1 with a finite loss (0.8889); '
        'first NaN/Inf in: net.0.weight (NaN)')
    assert 'backward op: LinalgEighBackward0' in message
    assert 'FP32LossRegionHook' in message  # the fix it suggests
    # Here the bf16 rounding already happened in the output layer, before
    # the loss: the region alone cannot undo it, the stabilized eigh can.
    with pytest.raises(NonFiniteGradError):
        _run(tmp_path / 'region_only', dict(broken, fp32_loss_region=True),
             TRAIN, amp=True)
    runner = _run(tmp_path / 'fixed', dict(type='RISDegenerateNet'), TRAIN,
                  amp=True, iters=20, lr=1e-2)
    _assert_trains(runner, factor=1.5)
