"""The simulated dataset: fields, statistics, seeding and the cache."""
import glob
import os.path as osp

import numpy as np
import pytest
import torch

from engine_plugins.datasets.ris import (ArrayGeometry, RISDoADataset,
                                         simulate_scene)

GEOMETRY = dict(rows=4, cols=4)


def _val(tmp_path, **kwargs):
    args = dict(
        geometry=GEOMETRY,
        num_sources=(1, 3),
        num_snapshots=16,
        snr_db=[-5.0, 10.0],
        split='val',
        num_samples=6,
        cache_dir=str(tmp_path))
    args.update(kwargs)
    return RISDoADataset(**args)


def test_item_fields_and_contracts(tmp_path):
    item = _val(tmp_path)[1]
    s = item['data_samples']
    assert item['inputs'].shape == (2, 16, 16)
    assert item['inputs'].dtype == torch.float32
    torch.testing.assert_close(item['inputs'][0], s['cov'].real)
    for key in ('cov', 'cov_true'):
        cov = s[key]
        assert cov.dtype == torch.complex64
        torch.testing.assert_close(cov, cov.mH)  # Hermitian
        assert cov.diagonal().real.sum().item() == pytest.approx(16, 1e-5)
    k = int(s['num_sources'])
    assert 1 <= k <= 3 and s['angles'].shape == (3, 2)
    assert s['snr_db'].item() == 10.0  # sample 1 of [-5, 10]
    assert torch.all(s['angles'][k:] == 0)
    # Ideal covariance = A P A^H + sigma^2 I in its own normalization.
    geo = ArrayGeometry(**GEOMETRY)
    a = geo.steering(np.radians(s['angles'][:k].double().numpy()))
    src = s['source_cov'][:k, :k].numpy().astype(np.complex128)
    ideal = a @ src @ a.conj().T + float(s['noise_power']) * np.eye(16)
    np.testing.assert_allclose(ideal, s['cov_true'].numpy(), atol=1e-5)
    # The losses' steering vectors are the same manifold, padded columns
    # at the padded (zero) angles.
    assert s['steering'].shape == (16, 3)
    np.testing.assert_allclose(s['steering'][:, :k].numpy(), a, atol=1e-6)
    np.testing.assert_allclose(s['steering'][:, k:].numpy(),
                               np.ones((16, 3 - k)), atol=1e-6)
    # Noise power relative to the (unit) source power is the SNR.
    assert src[0, 0].real / float(s['noise_power']) == pytest.approx(10.0)


def test_sample_covariance_converges_and_correlation():
    geo = ArrayGeometry(4, 1)
    s = simulate_scene(
        geo, np.random.default_rng(0), 2, 40000, 5.0, correlation=0.6)
    err = np.abs(s['cov'] - s['cov_true']).max()
    assert err < 0.05  # O(1/sqrt(T)) for T = 40000
    src = s['source_cov']
    assert abs(src[0, 1]) / np.sqrt(src[0, 0] * src[1, 1]).real == \
        pytest.approx(0.6)


def test_min_separation_and_field_of_view():
    s = simulate_scene(
        ArrayGeometry(3, 3),
        np.random.default_rng(1),
        4,
        8,
        0.0,
        az_range=(-20, 20),
        el_range=(0, 10),
        min_separation=6.0)
    ang = s['angles']
    assert np.all((ang[:, 0] >= -20) & (ang[:, 0] <= 20))
    assert np.all((ang[:, 1] >= 0) & (ang[:, 1] <= 10))
    dist = np.linalg.norm(ang[:, None] - ang[None], axis=-1)
    assert dist[np.triu_indices(4, 1)].min() >= 6.0


def test_fixed_split_is_cached_and_reproducible(tmp_path):
    first = _val(tmp_path)
    files = glob.glob(osp.join(str(tmp_path), 'ris_val_*.npz'))
    assert len(files) == 1
    again = _val(tmp_path)  # loaded from the file
    other = _val(tmp_path / 'elsewhere')  # regenerated from the seed
    for i in range(6):
        for ds in (again, other):
            torch.testing.assert_close(ds[i]['inputs'], first[i]['inputs'])
    test = _val(tmp_path, split='test')
    assert not torch.equal(test[0]['inputs'], first[0]['inputs'])


def test_corrupt_or_stale_cache_is_named(tmp_path):
    _val(tmp_path)
    path = glob.glob(osp.join(str(tmp_path), 'ris_val_*.npz'))[0]
    with open(path, 'wb') as f:
        f.write(b'not a zip file')
    with pytest.raises(RuntimeError, match=f'{path} is corrupt.*delete'):
        _val(tmp_path)
    data = dict(np.load(_saved(tmp_path / 'b')))
    data.pop('angles')
    np.savez(path, **data)
    with pytest.raises(RuntimeError, match=r"lacks fields \['angles'\]"):
        _val(tmp_path)


def _saved(folder):
    _val(folder)
    return glob.glob(osp.join(str(folder), 'ris_val_*.npz'))[0]


def test_training_split_draws_new_scenes():
    ds = RISDoADataset(geometry=GEOMETRY, num_samples=4, snr_db=(0, 10))
    torch.manual_seed(0)
    a = ds[0]['inputs']
    b = ds[0]['inputs']
    torch.manual_seed(0)
    assert not torch.equal(a, b)
    torch.testing.assert_close(ds[0]['inputs'], a)  # seeded by torch
    snr = [float(ds[0]['data_samples']['snr_db']) for _ in range(20)]
    assert min(snr) >= 0 and max(snr) <= 10 and len(set(snr)) == 20


def test_bad_arguments():
    with pytest.raises(ValueError, match=r'1 <= K < 16'):
        RISDoADataset(geometry=GEOMETRY, num_sources=16)
    with pytest.raises(ValueError, match="split must be 'train'"):
        RISDoADataset(geometry=GEOMETRY, split='validation')


def test_coherent_sources_share_one_signal():
    geo = ArrayGeometry(4, 1)
    s = simulate_scene(geo, np.random.default_rng(3), 2, 50, 300.0,
                       correlation=1.0, min_separation=20.0)
    # Noise-free (300 dB) and coherent: the sample covariance has rank 1
    # although there are two sources.
    values = np.linalg.eigvalsh(s['cov'])
    assert values[-1] == pytest.approx(4.0, rel=1e-9)
    assert np.all(np.abs(values[:-1]) < 1e-9)
    # Its source covariance is all ones (unit powers, correlation 1).
    np.testing.assert_allclose(s['source_cov'] / s['source_cov'][0, 0],
                               np.ones((2, 2)))
    with pytest.raises(ValueError, match=r'correlation must be in \[0, 1\]'):
        simulate_scene(geo, np.random.default_rng(0), 2, 8, 0.0,
                       correlation=1.5)


def test_lists_of_snapshots_and_correlations(tmp_path):
    # val/test cycle through SNR first, then T, then the correlation.
    ds = _val(tmp_path, snr_db=[0.0, 10.0], num_snapshots=[4, 16],
              correlation=[0.0, 1.0], num_samples=8, num_sources=2)
    settings = [(float(ds[i]['data_samples']['snr_db']),
                 int(ds[i]['data_samples']['num_snapshots']),
                 float(ds[i]['data_samples']['correlation']))
                for i in range(8)]
    assert settings == [(0, 4, 0), (10, 4, 0), (0, 16, 0), (10, 16, 0),
                        (0, 4, 1), (10, 4, 1), (0, 16, 1), (10, 16, 1)]
    # T = 4 snapshots: the sample covariance has rank at most 4.
    cov = ds[0]['data_samples']['cov'].numpy().astype(np.complex128)
    assert np.sum(np.linalg.eigvalsh(cov) > 1e-5) == 4
    # Training draws both values of each list.
    train = RISDoADataset(geometry=GEOMETRY, num_snapshots=[4, 16],
                          correlation=[0.0, 1.0], split='train')
    torch.manual_seed(0)
    drawn = {(int(train[i]['data_samples']['num_snapshots']),
              float(train[i]['data_samples']['correlation']))
             for i in range(40)}
    assert drawn == {(4, 0.0), (4, 1.0), (16, 0.0), (16, 1.0)}


def test_bad_snapshot_and_correlation_lists_are_named():
    with pytest.raises(ValueError, match=r'num_snapshots=\[4, 2.5\]'):
        RISDoADataset(geometry=GEOMETRY, num_snapshots=[4, 2.5])
    with pytest.raises(ValueError, match='correlation=1.2'):
        RISDoADataset(geometry=GEOMETRY, correlation=1.2)
    with pytest.raises(ValueError, match='correlation is an empty list'):
        RISDoADataset(geometry=GEOMETRY, correlation=[])
