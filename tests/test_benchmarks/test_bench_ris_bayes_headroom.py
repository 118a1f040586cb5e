"""The posterior-mean headroom benchmark, run as a user runs it, on a tiny
4x4 array with a coarse grid: its cells recomputed here from the same
scenes, and its refusal of a prior box that differs from the scenes'."""
import json

import numpy as np
import pytest

from benchmarks.bench_ris_bayes_headroom import main
from engine_plugins.evaluation.ris import (DMLSearch, MusicEstimator,
                                           RISDoAMetric, SingleSourcePosterior)
from engine_plugins.registry import DATASETS
from engine_plugins.utils import load_config
from tests.tool_loading import run_script

TINY = [
    'test_dataloader.dataset.geometry.rows=4',
    'test_dataloader.dataset.geometry.cols=4',
    'test_evaluator.geometry.rows=4', 'test_evaluator.geometry.cols=4',
    'test_evaluator.grid_step=4.0'
]


def _single_source_scenes():
    """The benchmark's scenes for T = 4 with 8 per SNR: the single-source
    ones up to -5 dB, grouped by SNR."""
    cfg = load_config('configs/ris/ris_upa8x8_cpu.py')
    cfg.test_dataloader.dataset.geometry.update(rows=4, cols=4)
    dataset = DATASETS.build(
        dict(
            cfg.test_dataloader.dataset,
            num_snapshots=4,
            num_samples=8 * 7,
            seed=7,
            cache_dir=None))
    groups = {}
    for i in range(len(dataset)):
        s = {k: v.numpy() for k, v in dataset[i]['data_samples'].items()}
        if int(s['num_sources']) == 1 and float(s['snr_db']) <= -5:
            groups.setdefault(float(s['snr_db']), []).append(s)
    return groups


def test_cells_match_the_columns_recomputed_from_the_scenes(tmp_path):
    out = tmp_path / 'headroom.json'
    proc = run_script('benchmarks/bench_ris_bayes_headroom.py', '--scenes',
                      '8', '--snapshots', '4', '--grid-step',
                      '4', '--resamples', '50', '--workers', '1', '--out',
                      str(out), '--cfg-options', *TINY)
    result = json.loads(out.read_text())

    groups = _single_source_scenes()
    geometry = dict(rows=4, cols=4)
    metric = RISDoAMetric(geometry=geometry, grid_step=4.0)
    posterior = SingleSourcePosterior(
        DMLSearch(MusicEstimator(metric.geometry, grid_step=4.0)))
    assert [c['snr'] for c in result['cells']] == sorted(groups)
    for cell in result['cells']:
        scenes = groups[cell['snr']]
        assert cell['sources'] == len(scenes)
        sq_dml, sq_mean = [], []
        for s in scenes:
            true = s['angles'][:1]
            sq_dml.append(((metric.dml(s['cov'], 1) - true)**2).sum())
            mean = posterior.mean(s['cov'], 4, float(s['source_cov'][0,
                                                                     0].real),
                                  float(s['noise_power']))
            sq_mean.append(((mean - true)**2).sum())
        # Two angle components per source.
        assert cell['rmse_dml'] == pytest.approx(
            np.sqrt(np.mean(sq_dml) / 2), rel=1e-6)
        assert cell['rmse_posterior_mean'] == pytest.approx(
            np.sqrt(np.mean(sq_mean) / 2), rel=1e-6)
        diff, lo, hi = cell['posterior_mean_minus_dml']
        assert lo <= diff <= hi
    pooled = result['pooled']['T=4']
    assert pooled['sources'] == sum(len(g) for g in groups.values())
    # The search box is az -60..60, el -30..30: its centre is (0, 0).
    truth = np.concatenate(
        [s['angles'][:1] for g in groups.values() for s in g])
    assert pooled['centre_truth'] == pytest.approx(
        np.sqrt(np.mean((truth**2).sum(-1))), rel=1e-6)
    assert '| T=4 | pooled |' in proc.stdout


def test_a_prior_box_other_than_the_scenes_is_refused(tmp_path):
    with pytest.raises(SystemExit, match='test_dataloader.dataset.az_range'):
        main([
            '--scenes', '1', '--out',
            str(tmp_path / 'h.json'), '--cfg-options', *TINY,
            'test_evaluator.az_range=[-50,50]'
        ])
