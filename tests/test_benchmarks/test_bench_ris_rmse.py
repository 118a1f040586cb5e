"""The RIS regime benchmark, run as a user runs it, on a tiny 4x4 array
for a few iterations; then its JSON drawn by tools/plot_ris_rmse.py."""
import json

import matplotlib.image as mpimg

from tests.tool_loading import load_tool, run_script

TINY = [
    'geometry.rows=4', 'geometry.cols=4', 'model.geometry.rows=4',
    'model.geometry.cols=4', 'model.hidden=[32]',
    'train_dataloader.dataset.geometry.rows=4',
    'train_dataloader.dataset.geometry.cols=4',
    'train_dataloader.batch_size=8', 'test_dataloader.dataset.geometry.rows=4',
    'test_dataloader.dataset.geometry.cols=4',
    'val_dataloader.dataset.geometry.rows=4',
    'val_dataloader.dataset.geometry.cols=4',
    'val_dataloader.dataset.num_samples=14', 'test_evaluator.geometry.rows=4',
    'test_evaluator.geometry.cols=4', 'val_evaluator.geometry.rows=4',
    'val_evaluator.geometry.cols=4', 'test_evaluator.grid_step=4.0',
    'val_evaluator.grid_step=4.0'
]


def test_trains_evaluates_every_regime_and_plots(tmp_path):
    out = tmp_path / 'rmse.json'
    proc = run_script('benchmarks/bench_ris_rmse.py', '--iters', '4',
                      '--scenes', '3', '--resamples', '50', '--snapshots', '4',
                      '--correlations', '1.0', '--work-dir',
                      str(tmp_path / 'work'), '--out', str(out),
                      '--cfg-options', *TINY)
    result = json.loads(out.read_text())
    # 7 SNRs x (base, T=4, correlation 1) cells of 3 scenes each.
    assert len(result['cells']) == 21
    assert {(c['regime'], c['num_snapshots'], c['correlation'])
            for c in result['cells']} == {('snr', 32, 0.0),
                                          ('snapshots', 4, 0.0),
                                          ('correlation', 32, 1.0)}
    for cell in result['cells']:
        assert cell['scenes'] == 3
        for column in ('network', 'music'):
            lo, hi = cell[f'ci_{column}']
            assert lo <= cell[f'rmse_{column}'] <= hi
    assert set(result['regimes']) == {
        f'{regime}{versus}'
        for regime in ('low_snr', 'snapshots', 'correlation',
                       'snapshots_above_low_snr', 'correlation_above_low_snr')
        for versus in ('', '_vs_fbss', '_vs_dml', '_vs_classical_switch',
                       '_fit_oracle')
    }
    assert result['columns'] == [
        'network', 'network_raw', 'network_raw_fbss', 'music', 'music_fbss',
        'dml', 'classical_switch', 'fit_oracle', 'sqrt_crb'
    ]
    assert len(result['never_worse']) == 21
    # 3 scenes at each of the 4 SNRs above -5 dB (T = 4).
    assert result['regimes']['snapshots_above_low_snr']['scenes'] == 12
    assert [b['snr'] for b in result['bound']] == [10.0, 20.0]
    assert 'never worse than MUSIC:' in proc.stdout
    assert result['iters'] == 4 and result['train_seconds'] > 0

    # The README's tables, printed again from the JSON alone.
    tables = run_script(
        'benchmarks/bench_ris_rmse.py', '--report', str(out),
        timeout=120).stdout
    assert '**uncorrelated, T = 4**' in tables
    assert '**correlation 1, T = 32**' in tables
    rows = [r for r in tables.splitlines() if r.startswith('| network |')]
    # One per setting, each a label and the 7 SNRs.
    assert len(rows) == 3 and all(r.count('|') == 9 for r in rows)
    reduction = result['regimes']['snapshots']['reduction']
    assert f'| {100 * reduction:.1f}% |' in tables

    plot_tool = load_tool('plot_ris_rmse')
    png = tmp_path / 'rmse.png'
    plot_tool.main([str(out), '--out', str(png), '--snr', '10'])
    assert mpimg.imread(str(png)).shape[:2] == (450, 1600)  # 16x4.5 in
