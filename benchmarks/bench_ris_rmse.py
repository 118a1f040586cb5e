"""RIS DoA: the trained network against MUSIC, smoothed MUSIC and
sqrt(CRB) in the regimes that motivate learned covariance estimators.

Trains the config once through the normal Runner (or loads
``--checkpoint``), then evaluates fresh test scenes (seeded, disjoint from
the validation split) in three regimes, every cell at every SNR of the
config's ``eval_snrs``:

* ``snr``: the config's T, uncorrelated sources (low SNR is its -15 to
  -5 dB rows; the high-SNR rows test the distance to the bound);
* ``snapshots``: T in ``--snapshots`` (default 4, 8, 16), uncorrelated;
* ``correlation``: correlation in ``--correlations`` (default 0.9, 1.0:
  coherent), the config's T.

Per cell: RMSE of every ``RISDoAMetric`` column with a 95% bootstrap
interval over scenes, the paired interval of network - MUSIC, the fraction
of gross errors (> 5 deg) and the RMSE of the rest. Then the checks: the
network never worse than MUSIC (RMSE <= MUSIC's RMSE + the half-width of
its interval, every cell), the reduction against MUSIC pooled over each
regime (also against smoothed MUSIC and the network-free switch; few
snapshots and correlation also without the low-SNR rows), and
network / sqrt(CRB) at 10-20 dB with T = 32. Writes everything to
``--out`` (JSON; ``tools/plot_ris_rmse.py`` draws it).
Usage::

    python benchmarks/bench_ris_rmse.py [--config CONFIG] [--iters N]
        [--scenes 100] [--checkpoint CKPT] [--out JSON] [--workers 2]
    python benchmarks/bench_ris_rmse.py --report JSON  # tables again
"""
import argparse
import json
import os
import os.path as osp
import sys
import time
from typing import Dict, List, Sequence

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

DEFAULT_CONFIG = 'configs/ris/ris_upa8x8_cpu.py'
LOW_SNR = (-15.0, -5.0)  # dB range of the low-SNR regime
BOUND_SNR = (10.0, 20.0)  # dB range of the distance-to-bound check


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', default=DEFAULT_CONFIG)
    parser.add_argument(
        '--iters',
        type=int,
        default=None,
        help='training iterations (default: the config)')
    parser.add_argument(
        '--checkpoint',
        default=None,
        help='evaluate this checkpoint instead of training')
    parser.add_argument(
        '--scenes',
        type=int,
        default=100,
        help='test scenes per (regime, setting, SNR) cell')
    parser.add_argument('--snapshots', type=int, nargs='+', default=[4, 8, 16])
    parser.add_argument(
        '--correlations', type=float, nargs='+', default=[0.9, 1.0])
    parser.add_argument(
        '--resamples', type=int, default=2000, help='bootstrap resamples')
    parser.add_argument(
        '--seed',
        type=int,
        default=7,
        help='seed of the test scenes and the bootstrap')
    parser.add_argument(
        '--threads',
        type=int,
        default=1,
        help='torch/BLAS threads; 1 by default: on a busy 2-core machine '
        'batched 64x64 complex eigh was ~300x and scene simulation ~30x '
        'slower with 2 threads than with 1')
    parser.add_argument(
        '--workers',
        type=int,
        default=2,
        help='processes that decode the scenes (each on --threads '
        'threads); training leaves the other cores idle, decoding is '
        'independent per scene')
    parser.add_argument('--work-dir', default='work_dirs/bench_ris')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        default=[],
        help='config overrides KEY=VALUE, e.g. model.residual=True')
    parser.add_argument(
        '--out',
        default=None,
        help='JSON output (default: WORK_DIR/rmse.json)')
    parser.add_argument(
        '--report',
        default=None,
        metavar='JSON',
        help='print the tables of an earlier run\'s JSON and exit')
    return parser.parse_args(argv)


def regime_cells(cfg, snapshots: Sequence[int],
                 correlations: Sequence[float]) -> List[dict]:
    """(regime, T, correlation) settings; every cell covers all SNRs."""
    base_t = cfg.test_dataloader.dataset.num_snapshots
    cells = [dict(regime='snr', num_snapshots=base_t, correlation=0.0)]
    cells += [
        dict(regime='snapshots', num_snapshots=t, correlation=0.0)
        for t in snapshots
    ]
    cells += [
        dict(regime='correlation', num_snapshots=base_t, correlation=r)
        for r in correlations
    ]
    return cells


def predict_records(model,
                    metric,
                    dataset_cfg: dict,
                    batch_size: int = 64,
                    pool=None) -> List[dict]:
    """Per-scene records (``RISDoAMetric.sample_result``) of the model on
    the dataset built from ``dataset_cfg``, decoded in ``pool`` (a
    ``multiprocessing`` pool whose workers hold ``metric``) if given."""
    import torch
    from mmengine.dataset import default_collate

    from engine_plugins.registry import DATASETS
    dataset = DATASETS.build(dataset_cfg)
    outputs = []
    for start in range(0, len(dataset), batch_size):
        batch = default_collate([
            dataset[i]
            for i in range(start, min(len(dataset), start + batch_size))
        ])
        with torch.no_grad():
            outputs += model(
                batch['inputs'], batch['data_samples'], mode='predict')
    if pool is None:
        return [metric.sample_result(o) for o in outputs]
    return pool.map(_decode, outputs, chunksize=8)


# The metric of the decoding workers, inherited through fork.
_WORKER_METRIC = None


def _decode(output: dict) -> dict:
    return _WORKER_METRIC.sample_result(output)


def decoding_pool(metric, workers: int):
    """A pool of ``workers`` forked processes that decode with ``metric``
    (None for one worker: decode in this process)."""
    global _WORKER_METRIC
    if workers <= 1:
        return None
    import multiprocessing
    _WORKER_METRIC = metric
    return multiprocessing.get_context('fork').Pool(workers)


def summarize_cell(records: List[dict], metric, resamples: int, rng) -> Dict:
    """The metric's summary plus bootstrap intervals of every column and
    of network - MUSIC."""
    from engine_plugins.evaluation.ris.bootstrap import (bootstrap_indices,
                                                         difference_interval,
                                                         rmse_interval)
    out = dict(scenes=len(records), **metric.summarize(records))
    index = bootstrap_indices(len(records), resamples, rng)
    count = [r['count'] for r in records]
    for column in metric.columns + ['sqrt_crb']:
        _, lo, hi = rmse_interval([r[column] for r in records], count, index)
        out[f'ci_{column}'] = [lo, hi]
    _, lo, hi = difference_interval([r['network'] for r in records],
                                    [r['music'] for r in records], count,
                                    index)
    out['ci_network_minus_music'] = [lo, hi]
    return out


def pooled_reduction(records: List[dict],
                     baseline: str,
                     estimate: str = 'network') -> Dict:
    """RMSE of ``estimate`` (stored as ``network``) and ``baseline``
    pooled over ``records`` and the relative reduction
    ``1 - estimate / baseline``."""
    import numpy as np
    count = sum(r['count'] for r in records)
    net = float(np.sqrt(sum(r[estimate] for r in records) / count))
    base = float(np.sqrt(sum(r[baseline] for r in records) / count))
    return dict(
        network=net,
        baseline=baseline,
        baseline_rmse=base,
        reduction=1.0 - net / base,
        scenes=len(records))


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.report:
        with open(args.report) as f:
            result = json.load(f)
        print(report(result))
        print(markdown_tables(result))
        return result
    # Before numpy/torch load their BLAS: the simulation's small matrix
    # products were ~30x slower with 2 BLAS threads than with 1 here.
    for var in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
        os.environ.setdefault(var, str(args.threads))
    import numpy as np
    import torch
    torch.set_num_threads(args.threads)
    from mmengine.config import DictAction

    from engine_plugins.registry import METRICS
    from engine_plugins.utils import build_runner, load_config
    options = {}
    for item in args.cfg_options:
        key, _, value = item.partition('=')
        options[key] = DictAction._parse_iterable(value)
    cfg = load_config(args.config, options, work_dir=args.work_dir)
    if args.iters is not None:
        cfg.train_cfg.update(max_iters=args.iters, val_interval=args.iters)
        cfg.default_hooks.checkpoint.interval = args.iters
    train_s = 0.0
    if args.checkpoint:
        cfg.load_from = args.checkpoint
        runner = build_runner(cfg)
        runner.load_or_resume()
    else:
        runner = build_runner(cfg)
        start = time.perf_counter()
        runner.train()
        train_s = time.perf_counter() - start
    model = runner.model
    model.eval()
    metric = METRICS.build(cfg.test_evaluator)
    snrs = list(cfg.test_dataloader.dataset.snr_db)
    rng = np.random.default_rng(args.seed)

    start = time.perf_counter()
    cells, pooled = [], {}
    decoders = decoding_pool(metric, args.workers)
    for cell in regime_cells(cfg, args.snapshots, args.correlations):
        dataset_cfg = dict(
            cfg.test_dataloader.dataset,
            num_snapshots=cell['num_snapshots'],
            correlation=cell['correlation'],
            num_samples=args.scenes * len(snrs),
            seed=args.seed,
            cache_dir=None)
        records = predict_records(model, metric, dataset_cfg, pool=decoders)
        for snr in snrs:
            group = [r for r in records if r['snr'] == snr]
            summary = summarize_cell(group, metric, args.resamples, rng)
            cells.append(dict(cell, snr=snr, **summary))
        pooled.setdefault(cell['regime'], []).extend(
            r for r in records
            if cell['regime'] != 'snr' or LOW_SNR[0] <= r['snr'] <= LOW_SNR[1])
        print(f'{cell}: {len(records)} scenes evaluated', flush=True)
    if decoders is not None:
        decoders.close()
        decoders.join()
    eval_s = time.perf_counter() - start

    regimes = {}
    pools = dict(
        low_snr=pooled['snr'],
        snapshots=pooled['snapshots'],
        correlation=pooled['correlation'])
    # The same regimes without the low-SNR rows, which belong to both
    # regimes and dominate a pooled RMSE (tens of degrees where every
    # method fails): one factor at a time.
    for name in ('snapshots', 'correlation'):
        pools[f'{name}_above_low_snr'] = [
            r for r in pooled[name] if r['snr'] > LOW_SNR[1]
        ]
    # The classical answers on the same scenes: smoothing, and the fit test
    # switching to it without a network.
    versus = dict(
        fbss='music_fbss', dml='dml', classical_switch='classical_switch')
    for name, pool in pools.items():
        regimes[name] = pooled_reduction(pool, 'music')
        # What following the data's fit reaches at best (truth-aided).
        regimes[f'{name}_fit_oracle'] = pooled_reduction(
            pool, 'music', 'fit_oracle')
        for short, baseline in versus.items():
            if baseline in metric.columns:
                regimes[f'{name}_vs_{short}'] = pooled_reduction(
                    pool, baseline)
    never_worse = [
        dict(
            regime=c['regime'],
            num_snapshots=c['num_snapshots'],
            correlation=c['correlation'],
            snr=c['snr'],
            network=c['rmse_network'],
            music=c['rmse_music'],
            allowed=2 * c['rmse_music'] - c['ci_music'][0],
            ok=c['rmse_network']
            <= c['rmse_music'] + (c['rmse_music'] - c['ci_music'][0]))
        for c in cells
    ]
    bound = [
        dict(
            snr=c['snr'],
            network=c['rmse_network'],
            sqrt_crb=c['rmse_sqrt_crb'],
            ratio=c['rmse_network'] / c['rmse_sqrt_crb'],
            fine_ratio=c['rmse_fine_network'] / c['rmse_sqrt_crb'],
            gross=c['gross_network']) for c in cells
        if c['regime'] == 'snr' and BOUND_SNR[0] <= c['snr'] <= BOUND_SNR[1]
    ]
    from benchmarks.machine import describe
    result = dict(
        config=args.config,
        cfg_options=args.cfg_options,
        checkpoint=args.checkpoint,
        iters=None if args.checkpoint else cfg.train_cfg.max_iters,
        scenes_per_cell=args.scenes,
        seed=args.seed,
        threads=args.threads,
        workers=args.workers,
        machine=describe(),
        train_seconds=round(train_s, 1),
        eval_seconds=round(eval_s, 1),
        columns=metric.columns + ['sqrt_crb'],
        cells=cells,
        regimes=regimes,
        never_worse=never_worse,
        bound=bound)
    out = args.out or osp.join(args.work_dir, 'rmse.json')
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    with open(out, 'w') as f:
        json.dump(result, f, indent=1)
    print(report(result))
    print(markdown_tables(result))
    print(f'metrics in {out}')
    return result


def report(result: dict) -> str:
    """The tables the README quotes."""
    cols = [c for c in result['columns']]
    lines = [
        result['machine'], f"train {result['train_seconds']} s, evaluation "
        f"{result['eval_seconds']} s ({result.get('workers', 1)} decoding "
        f"processes), {result['scenes_per_cell']} scenes per cell", '',
        '| regime | T | corr | SNR dB | ' + ' | '.join(cols) +
        ' | gross net / MUSIC | never worse |',
        '| --- ' * (len(cols) + 6) + '|'
    ]
    verdicts = {
        (v['regime'], v['num_snapshots'], v['correlation'], v['snr']): v['ok']
        for v in result['never_worse']
    }
    for c in result['cells']:
        key = (c['regime'], c['num_snapshots'], c['correlation'], c['snr'])
        values = []
        for col in cols:
            text = f"{c[f'rmse_{col}']:.3f}"
            if col in ('network', 'music'):
                lo, hi = c[f'ci_{col}']
                text += f' [{lo:.3f}, {hi:.3f}]'
            values.append(text)
        lines.append(f"| {c['regime']} | {c['num_snapshots']} | "
                     f"{c['correlation']:g} | {c['snr']:g} | " +
                     ' | '.join(values) +
                     f" | {100 * c['gross_network']:.1f}% / "
                     f"{100 * c['gross_music']:.1f}% | "
                     f"{'yes' if verdicts[key] else 'NO'} |")
    lines += [
        '', '| regime | network | baseline | reduction |',
        '| --- | --- | --- | --- |'
    ]
    for name, r in result['regimes'].items():
        lines.append(
            f"| {name} | {r['network']:.3f} | {r['baseline']} "
            f"{r['baseline_rmse']:.3f} | {100 * r['reduction']:.1f}% |")
    lines += [
        '', '| SNR dB (T=32) | network / sqrt(CRB) | without gross '
        'errors | gross |', '| --- | --- | --- | --- |'
    ]
    for b in result['bound']:
        lines.append(f"| {b['snr']:g} | {b['ratio']:.2f} | "
                     f"{b['fine_ratio']:.2f} | {100 * b['gross']:.1f}% |")
    failed = sum(not v['ok'] for v in result['never_worse'])
    lines.append(
        f'\nnever worse than MUSIC: {len(result["never_worse"]) - failed}'
        f'/{len(result["never_worse"])} cells')
    return '\n'.join(lines)


# Rows of the per-setting tables; the network and MUSIC rows carry their
# 95% intervals.
SETTING_ROWS = ('network', 'music', 'music_fbss', 'dml', 'classical_switch',
                'network_raw', 'fit_oracle', 'sqrt_crb')
REGIME_LABELS = dict(
    low_snr='low SNR (−15…−5 dB, config T)',
    snapshots='few snapshots (all SNRs)',
    correlation='correlated (all SNRs)',
    snapshots_above_low_snr='few snapshots, above the low-SNR range',
    correlation_above_low_snr='correlated, above the low-SNR range')


def _g(value: float, digits: int = 3) -> str:
    return f'{value:.{digits}g}'


def markdown_tables(result: dict) -> str:
    """The README's tables: per setting (regime, T, correlation) one row
    per column over the SNRs, then the pooled reductions."""
    from engine_plugins.evaluation.ris import COLUMN_LABELS
    settings: Dict[tuple, List[dict]] = {}
    for c in result['cells']:
        key = (c['regime'], c['num_snapshots'], c['correlation'])
        settings.setdefault(key, []).append(c)
    columns = set(result['columns'])
    lines = []
    for (regime, t, corr), cells in settings.items():
        what = 'uncorrelated' if corr == 0 else f'correlation {corr:g}'
        lines += [
            f'**{what}, T = {t}** (RMSE, degrees; network / MUSIC: 95% '
            'interval)', '',
            '| SNR (dB) | ' + ' | '.join(_g(c['snr']) for c in cells) + ' |',
            '| --- ' * (len(cells) + 1) + '|'
        ]
        for col in SETTING_ROWS:
            if col not in columns:
                continue
            label = COLUMN_LABELS[col]
            values = []
            for c in cells:
                text = _g(c[f'rmse_{col}'])
                if col in ('network', 'music'):
                    lo, hi = c[f'ci_{col}']
                    text += f' [{_g(lo, 2)}, {_g(hi, 2)}]'
                values.append(text)
            lines.append(f'| {label} | ' + ' | '.join(values) + ' |')
        lines.append('| gross errors, network / MUSIC | ' +
                     ' | '.join(f"{100 * c['gross_network']:.1f}% / "
                                f"{100 * c['gross_music']:.1f}%"
                                for c in cells) + ' |')
        lines.append('| RMSE without gross errors, network / MUSIC | ' +
                     ' | '.join(f"{_g(c['rmse_fine_network'])} / "
                                f"{_g(c['rmse_fine_music'])}"
                                for c in cells) + ' |')
        lines.append('')
    regimes = result['regimes']
    lines += [
        '| regime (pooled over its cells) | network | MUSIC | reduction | '
        'FB-SS MUSIC | DML fit | switch without network | truth-aided fit |',
        '| --- | --- | --- | --- | --- | --- | --- | --- |'
    ]
    for name, label in REGIME_LABELS.items():
        r = regimes[name]
        row = [
            label,
            _g(r['network']),
            _g(r['baseline_rmse']), f"{100 * r['reduction']:.1f}%"
        ]
        for short in ('fbss', 'dml', 'classical_switch'):
            other = regimes.get(f'{name}_vs_{short}')
            row.append('' if other is
                       None else f"{_g(other['baseline_rmse'])} "
                       f"({100 * other['reduction']:.1f}%)")
        oracle = regimes.get(f'{name}_fit_oracle')
        row.append('' if oracle is None else f"{_g(oracle['network'])} "
                   f"({100 * oracle['reduction']:.1f}% below MUSIC)")
        lines.append('| ' + ' | '.join(row) + ' |')
    return '\n'.join(lines)


if __name__ == '__main__':
    main()
