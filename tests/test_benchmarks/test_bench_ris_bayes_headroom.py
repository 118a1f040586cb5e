"""The posterior-mean headroom benchmark, run as a user runs it, on a tiny
4x4 array with a coarse grid."""
import json

import pytest

from engine_plugins.registry import DATASETS
from engine_plugins.utils import load_config
from tests.tool_loading import run_script

TINY = [
    'test_dataloader.dataset.geometry.rows=4',
    'test_dataloader.dataset.geometry.cols=4',
    'test_evaluator.geometry.rows=4', 'test_evaluator.geometry.cols=4',
    'test_evaluator.grid_step=4.0'
]


def test_reports_every_low_snr_cell_on_single_source_scenes(tmp_path):
    out = tmp_path / 'headroom.json'
    proc = run_script('benchmarks/bench_ris_bayes_headroom.py', '--scenes',
                      '8', '--snapshots', '4', '--grid-step',
                      '4', '--resamples', '50', '--workers', '1', '--out',
                      str(out), '--cfg-options', *TINY)
    result = json.loads(out.read_text())

    # The same scenes, counted here: single-source ones up to -5 dB.
    cfg = load_config('configs/ris/ris_upa8x8_cpu.py')
    cfg.test_dataloader.dataset.geometry.update(rows=4, cols=4)
    dataset = DATASETS.build(
        dict(
            cfg.test_dataloader.dataset,
            num_snapshots=4,
            num_samples=8 * 7,
            seed=7,
            cache_dir=None))
    expected = {}
    for i in range(len(dataset)):
        s = dataset[i]['data_samples']
        if int(s['num_sources']) == 1 and float(s['snr_db']) <= -5:
            expected[float(
                s['snr_db'])] = expected.get(float(s['snr_db']), 0) + 1
    assert {c['snr']: c['sources'] for c in result['cells']} == expected
    assert result['pooled']['all']['sources'] == sum(expected.values())
    for summary in result['cells'] + list(result['pooled'].values()):
        for column in ('dml', 'posterior_mean', 'posterior_mean_estimated'):
            lo, hi = summary[f'ci_{column}']
            assert lo <= summary[f'rmse_{column}'] <= hi
        diff, lo, hi = summary['posterior_mean_minus_dml']
        assert diff == pytest.approx(summary['rmse_posterior_mean'] -
                                     summary['rmse_dml'])
        assert lo <= diff <= hi
    assert '| T=4 | pooled |' in proc.stdout
