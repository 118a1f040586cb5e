"""RISDoAMetric: per-SNR table of network, MUSIC (plain and smoothed) and
sqrt(CRB), gross errors, and the fit test that picks the network's
estimate."""
from unittest import mock

import numpy as np
import pytest
from mmengine.dataset import default_collate

from engine_plugins.datasets.ris import RISDoADataset
from engine_plugins.evaluation.ris import (RISDoAMetric, crb_mse_deg2,
                                           residual_power)
from engine_plugins.models.ris import RISCovarianceNet
from engine_plugins.structures import ArrayGeometry

GEOMETRY = dict(rows=4, cols=4)


def _predictions(n=6):
    ds = RISDoADataset(
        geometry=GEOMETRY,
        num_sources=(1, 2),
        num_snapshots=32,
        snr_db=[0.0, 20.0],
        split='val',
        num_samples=n)
    batch = default_collate([ds[i] for i in range(n)])
    model = RISCovarianceNet(geometry=GEOMETRY, hidden=(16, ))
    outputs = model(batch['inputs'], batch['data_samples'], mode='predict')
    # An oracle "network": its covariance is the ideal one.
    for out in outputs:
        out['pred_cov'] = out['cov_true']
    return outputs


def test_oracle_network_scores_zero_and_crb_is_per_sample():
    outputs = _predictions()
    metric = RISDoAMetric(
        geometry=GEOMETRY, num_snapshots=32, select_by_fit=False)
    with mock.patch('engine_plugins.evaluation.ris.doa_metric.print_log'
                    ) as log:
        metric.process({}, outputs)
        metrics = metric.compute_metrics(metric.results)
    assert metrics['val_loss'] == pytest.approx(0.0, abs=1e-12)
    assert metrics['rmse_network'] < 1e-3
    for snr in (0, 20):
        group = [o for o in outputs if o['snr_db'] == snr]
        sq = sum(2 * int(o['num_sources']) * crb_mse_deg2(
            metric.geometry, o['angles'][:int(o['num_sources'])],
            o['source_cov'][:int(o['num_sources']), :int(o['num_sources'])],
            float(o['noise_power']), 32) for o in group)
        count = sum(2 * int(o['num_sources']) for o in group)
        assert metrics[f'rmse_sqrt_crb@{snr}dB'] == pytest.approx(
            np.sqrt(sq / count))
    # MUSIC on 32 snapshots is worse at 0 dB than at 20 dB.
    assert metrics['rmse_music@0dB'] > metrics['rmse_music@20dB']
    # No gross errors on this easy data: fine RMSE = RMSE.
    assert metrics['gross_network'] == 0.0
    assert metrics['rmse_fine_music'] == pytest.approx(metrics['rmse_music'])
    table = log.call_args[0][0].splitlines()
    assert table[1] == ('SNR dB | samples | network | music | music_fbss '
                        '| dml | fit_oracle | sqrt_crb')
    assert table[4].startswith('   all |       6 |')
    assert table[-1].startswith('   all |       6 |   0.0%')


def test_grouping_by_hand():
    metric = RISDoAMetric(geometry=GEOMETRY, decode=False)
    assert metric.compute_metrics([dict(frob=0.5), dict(frob=1.5)]) == \
        dict(val_loss=1.0)
    metric = RISDoAMetric(
        geometry=GEOMETRY, select_by_fit=False, smoothing=False)
    results = [
        dict(snr=0.0, frob=0, network=8.0, music=2.0, dml=1.0,
             fit_oracle=2.0, sqrt_crb=0.5, count=2),
        dict(snr=0.0, frob=0, network=0.0, music=0.0, dml=0.0,
             fit_oracle=0.0, sqrt_crb=0.5, count=2),
        dict(snr=5.0, frob=0, network=1.0, music=4.0, dml=6.0,
             fit_oracle=1.0, sqrt_crb=1.0, count=4),
    ]
    with mock.patch('engine_plugins.evaluation.ris.doa_metric.print_log'):
        m = metric.compute_metrics(results)
    assert m['rmse_network@0dB'] == pytest.approx(np.sqrt(8 / 4))
    assert m['rmse_music@5dB'] == pytest.approx(1.0)
    assert m['rmse_sqrt_crb'] == pytest.approx(np.sqrt(2 / 8))
    assert m['rmse_fit_oracle'] == pytest.approx(np.sqrt(3 / 8))
    assert m['rmse_dml@0dB'] == pytest.approx(np.sqrt(1 / 4))
    assert m['rmse_dml'] == pytest.approx(np.sqrt(7 / 8))
    assert 'gross_network' not in m  # records without per-source errors


def test_gross_errors_by_hand():
    metric = RISDoAMetric(
        geometry=GEOMETRY, select_by_fit=False, smoothing=False,
        gross_threshold=5.0)
    # Per-source squared errors (2 components each): 36 (6 deg) is gross,
    # 25 (exactly 5 deg) and 1 are not.
    group = [
        dict(network=37.0, network_src=[36.0, 1.0], music=1.0, fit_oracle=1.0,
             music_src=[1.0, 0.0], dml=1.0, sqrt_crb=1.0, count=4),
        dict(network=25.0, network_src=[25.0], music=0.0, music_src=[0.0],
             dml=0.0, fit_oracle=0.0,
             sqrt_crb=1.0, count=2),
    ]
    s = metric.summarize(group)
    assert s['gross_network'] == pytest.approx(1 / 3)
    assert s['rmse_fine_network'] == pytest.approx(np.sqrt(26 / 4))
    assert s['rmse_network'] == pytest.approx(np.sqrt(62 / 6))
    assert s['gross_music'] == 0.0
    assert s['rmse_fine_music'] == pytest.approx(np.sqrt(1 / 6))


def _sample(pred_cov, cov, angles, snapshots=32):
    k = len(angles)
    return dict(pred_cov=pred_cov, cov=cov, cov_true=cov, angles=angles,
                num_sources=k, snr_db=10.0, num_snapshots=snapshots,
                source_cov=np.eye(k), noise_power=0.1)


def _coherent_pair(geo):
    """Sources at -20 and 25 deg: their steering vectors ``a``, the truth,
    the coherent covariance (a1 + a2)(a1 + a2)^H + 0.1 I (one signal
    eigenvector, so MUSIC misses a source) and the ideal uncorrelated
    one a a^H + 0.1 I."""
    a = ArrayGeometry(**geo).steering(np.radians([[-20.0], [25.0]]))
    v = a[:, :1] + a[:, 1:]
    eye = 0.1 * np.eye(len(a))
    return (a, np.array([[-20.0], [25.0]]), v @ v.conj().T + eye,
            a @ a.conj().T + eye)


def test_fit_test_picks_the_network_only_where_music_fails():
    geo = dict(rows=8, cols=1)
    metric = RISDoAMetric(geometry=geo, az_range=(-60, 60), grid_step=0.5,
                          reference='music')
    # Coherent sources defeat MUSIC; the "network" gives the ideal
    # uncorrelated covariance and finds both.
    _, truth, coherent, ideal = _coherent_pair(geo)
    est = metric.estimates(_sample(ideal, coherent, truth))
    np.testing.assert_allclose(np.sort(est['network'][:, 0]), [-20, 25],
                               atol=1e-3)
    assert np.abs(np.sort(est['music'][:, 0]) - [-20, 25]).max() > 5
    # Smoothing decorrelates the coherent pair; the DML fit needs no
    # decorrelation.
    for column in ('music_fbss', 'dml'):
        np.testing.assert_allclose(np.sort(est[column][:, 0]), [-20, 25],
                                   atol=1e-3)
    # Uncorrelated sources: MUSIC works, and a "network" 2 deg off does not
    # replace it.
    off = ArrayGeometry(**geo).steering(np.radians([[-18.0], [27.0]]))
    biased = off @ off.conj().T + 0.1 * np.eye(8)
    est = metric.estimates(_sample(biased, ideal, truth))
    np.testing.assert_allclose(est['network'], est['music'])
    assert np.abs(np.sort(est['network_raw'][:, 0]) - [-18, 27]).max() < 1e-3


def test_smoothed_decoding_of_the_network_and_the_classical_switch():
    """A network that left a coherent pair coherent: MUSIC on its
    covariance misses a source, smoothed MUSIC on it finds both, and the
    fit test takes that decoding. The network-free switch does the same
    from the sample covariance, and keeps MUSIC where it works."""
    geo = dict(rows=8, cols=1)
    metric = RISDoAMetric(geometry=geo, az_range=(-60, 60), grid_step=0.5,
                          reference='music')
    assert metric.columns == [
        'network', 'network_raw', 'network_raw_fbss', 'music', 'music_fbss',
        'dml', 'classical_switch', 'fit_oracle'
    ]
    a, truth, coherent, ideal = _coherent_pair(geo)
    est = metric.estimates(_sample(coherent, coherent, truth))
    assert np.abs(np.sort(est['network_raw'][:, 0]) - [-20, 25]).max() > 5
    np.testing.assert_allclose(est['network'], est['network_raw_fbss'])
    np.testing.assert_allclose(np.sort(est['network'][:, 0]), [-20, 25],
                               atol=1e-3)
    np.testing.assert_allclose(np.sort(est['classical_switch'][:, 0]),
                               np.sort(est['music_fbss'][:, 0]), atol=1e-3)
    est = metric.estimates(_sample(ideal, ideal, truth))
    np.testing.assert_allclose(est['classical_switch'], est['music'])
    # From a sampled coherent covariance the switched estimate is moved to
    # a better fit of it; without refine_switched it is the candidate.
    rng = np.random.default_rng(0)
    s = np.ones((2, 1)) * (rng.standard_normal((1, 16)) + 1j *
                           rng.standard_normal((1, 16))) / np.sqrt(2)
    noise = (rng.standard_normal((8, 16)) +
             1j * rng.standard_normal((8, 16))) * np.sqrt(0.05)
    x = a @ s + noise
    sample = _sample(x @ x.conj().T / 16, x @ x.conj().T / 16, truth, 16)
    # (The network's smoothed decoding as the only candidate that can win
    # here: no extra peaks, no candidates from R_hat.)
    only_fbss = dict(geometry=geo, az_range=(-60, 60), grid_step=0.5,
                     candidate_peaks=0, sample_candidates=False,
                     reference='music')
    plain = RISDoAMetric(**only_fbss, refine_switched=False).estimates(sample)
    np.testing.assert_array_equal(plain['network'],
                                  plain['network_raw_fbss'])
    refined = RISDoAMetric(**only_fbss).estimates(sample)
    assert 0 < np.abs(refined['network'] - plain['network']).max() <= 1.0
    assert residual_power(metric.geometry, sample['cov'], refined[
        'network']) < residual_power(metric.geometry, sample['cov'],
                                     plain['network'])
    # Only MUSIC decoding: the smoothed candidate is gone.
    only = RISDoAMetric(geometry=geo, network_decoders=('music', ))
    assert 'network_raw_fbss' not in only.columns
    with pytest.raises(ValueError, match=r"network_decoders=\['svd'\]"):
        RISDoAMetric(geometry=geo, network_decoders=('svd', ))


def test_dml_reference_is_kept_unless_the_data_reject_it():
    """With the default reference the test protects the DML fit, not
    MUSIC's estimate: on coherent sources, where MUSIC misses a source,
    the DML fit already holds both, and the network's ideal covariance
    (which replaces MUSIC's pair with reference='music', above) adds
    nothing the data prefer."""
    geo = dict(rows=8, cols=1)
    metric = RISDoAMetric(geometry=geo, az_range=(-60, 60), grid_step=0.5)
    with pytest.raises(ValueError, match="reference='capon'"):
        RISDoAMetric(geometry=geo, reference='capon')
    _, truth, coherent, ideal = _coherent_pair(geo)
    est = metric.estimates(_sample(ideal, coherent, truth))
    np.testing.assert_array_equal(est['network'], est['dml'])
    np.testing.assert_array_equal(est['classical_switch'], est['dml'])
    np.testing.assert_allclose(np.sort(est['dml'][:, 0]), [-20, 25],
                               atol=1e-3)
    assert np.abs(np.sort(est['music'][:, 0]) - [-20, 25]).max() > 5


def test_candidate_peaks_let_the_data_skip_a_spurious_peak():
    """The network's covariance puts its strongest peak on a direction
    without a source (50 deg, three times a source's power); its top two
    peaks then hold one source, while its next peaks hold the other. The
    coherent sample covariance defeats MUSIC, so the test switches either
    way; with more peaks the candidate is the pair that fits the data."""
    geo = dict(rows=8, cols=1)
    a = ArrayGeometry(**geo).steering(np.radians([[-20.0], [25.0], [50.0]]))
    truth = np.array([[-20.0], [25.0]])
    spurious = a @ np.diag([1.0, 1.0, 3.0]) @ a.conj().T + 0.1 * np.eye(8)
    v = a[:, :1] + a[:, 1:2]
    coherent = v @ v.conj().T + 0.1 * np.eye(8)
    sample = _sample(spurious, coherent, truth)
    errors = {}
    for extra in (0, 4):
        metric = RISDoAMetric(geometry=geo, az_range=(-60, 60),
                              grid_step=1.0, network_decoders=('music', ),
                              smoothing=False, candidate_peaks=extra,
                              sample_candidates=False, reference='music')
        est = metric.estimates(sample)
        assert not np.allclose(est['network'], est['music'])
        errors[extra] = np.abs(np.sort(est['network'][:, 0]) - [-20, 25])
    assert errors[0].max() > 20  # 50 deg kept
    assert errors[4].max() < 2.5


def test_fit_oracle_by_hand():
    """2-element ULA, R = [[2, 1], [1, 2]]: c = tr(Pi^perp R) is 1 at az 0
    (steering (1, 1), the top eigenvector: the global minimum), 1.145 at
    10 deg and 2 - cos(pi sin 50 deg) = 2.742 at 50 deg."""
    metric = RISDoAMetric(geometry=dict(rows=2, cols=1), grid_step=1.0)
    assert metric.columns[-1] == 'fit_oracle'
    cov = np.array([[2.0, 1.0], [1.0, 2.0]], dtype=np.complex128)
    # The truth (10 deg) fits better than MUSIC's 50 deg: its basin's
    # minimum within two grid steps, the edge nearest 0: 8 deg.
    np.testing.assert_allclose(
        metric.fit_oracle(cov, np.array([[10.0]]), np.array([[50.0]])),
        [[8.0]], atol=1e-6)
    # MUSIC's 0 deg fits better than the truth: MUSIC's estimate stays.
    np.testing.assert_array_equal(
        metric.fit_oracle(cov, np.array([[10.0]]), np.array([[0.0]])),
        [[0.0]])


def test_missing_fields_are_named():
    metric = RISDoAMetric(geometry=GEOMETRY)
    with pytest.raises(KeyError, match=r"lacks fields \['pred_cov'\]"):
        metric.process({}, [dict(cov=0, cov_true=0, angles=0, num_sources=1,
                                 snr_db=0)])
