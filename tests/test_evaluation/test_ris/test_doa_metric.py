"""RISDoAMetric: per-SNR table of network, MUSIC and sqrt(CRB)."""
from unittest import mock

import numpy as np
import pytest
from mmengine.dataset import default_collate

from engine_plugins.datasets.ris import RISDoADataset
from engine_plugins.evaluation.ris import RISDoAMetric, crb_mse_deg2
from engine_plugins.models.ris import RISCovarianceNet

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
    metric = RISDoAMetric(geometry=GEOMETRY, num_snapshots=32)
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
    table = log.call_args[0][0]
    assert table.splitlines()[1] == ('SNR dB | samples | network | MUSIC '
                                     '| sqrt(CRB)')
    assert table.splitlines()[-1].startswith('   all |       6 |')


def test_grouping_by_hand():
    metric = RISDoAMetric(geometry=GEOMETRY, decode=False)
    assert metric.compute_metrics([dict(frob=0.5), dict(frob=1.5)]) == \
        dict(val_loss=1.0)
    metric = RISDoAMetric(geometry=GEOMETRY)
    results = [
        dict(snr=0.0, frob=0, network=8.0, music=2.0, sqrt_crb=0.5, count=2),
        dict(snr=0.0, frob=0, network=0.0, music=0.0, sqrt_crb=0.5, count=2),
        dict(snr=5.0, frob=0, network=1.0, music=4.0, sqrt_crb=1.0, count=4),
    ]
    with mock.patch('engine_plugins.evaluation.ris.doa_metric.print_log'):
        m = metric.compute_metrics(results)
    assert m['rmse_network@0dB'] == pytest.approx(np.sqrt(8 / 4))
    assert m['rmse_music@5dB'] == pytest.approx(1.0)
    assert m['rmse_sqrt_crb'] == pytest.approx(np.sqrt(2 / 8))


def test_missing_fields_are_named():
    metric = RISDoAMetric(geometry=GEOMETRY)
    with pytest.raises(KeyError, match=r"lacks fields \['pred_cov'\]"):
        metric.process({}, [dict(cov=0, cov_true=0, angles=0, num_sources=1,
                                 snr_db=0)])
