"""RIS DoA: how much lower an RMSE than the DML fit's any estimator can
reach, measured on single-source test scenes with the exact posterior
mean (``evaluation/ris/source_posterior.py``).

The posterior mean is the minimum-mean-squared-error estimate, so no
network trained on these scenes can beat its mean squared error; the gap
between it and the DML fit (which the trained network's column equals on
the regime benchmark) is all the room a learned estimator has on them.
Scenes are the config's test scenes (``bench_ris_rmse.py``'s seed by
default) at every T in ``--snapshots`` and every SNR of the config up to
``--max-snr``; only the scenes with one source are used, where the
posterior is exact and cheap (a grid sum). Two-source scenes are not
covered. Columns:

* ``dml``: the DML fit, as in the regime benchmark;
* ``posterior_mean``: the posterior mean given the scene's true SNR (an
  oracle);
* ``posterior_mean_estimated``: the same with the powers estimated from
  the sample covariance at the DML direction (no oracle).

Per cell: RMSE with 95% bootstrap intervals, the paired interval of
posterior mean - DML, the fraction of errors above 5 deg, and the RMS
distance of the estimates (and of the truth) from the centre of the
search box, which shows the posterior mean's shrinkage. Each T is also
pooled over its SNRs (not across T: every T draws the same directions).
Writes JSON to ``--out`` and prints a markdown table.

Usage::

    python benchmarks/bench_ris_bayes_headroom.py [--scenes 300]
        [--snapshots 4 8 16 32] [--max-snr -5] [--out JSON]
"""
import argparse
import json
import os
import os.path as osp
import sys
import time
from typing import Dict, List

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

DEFAULT_CONFIG = 'configs/ris/ris_upa8x8_cpu.py'
COLUMNS = ('dml', 'posterior_mean', 'posterior_mean_estimated')
GROSS_DEG = 5.0


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--config', default=DEFAULT_CONFIG)
    parser.add_argument(
        '--scenes',
        type=int,
        default=300,
        help='test scenes per (T, SNR) cell, about half with one source')
    parser.add_argument(
        '--snapshots', type=int, nargs='+', default=[4, 8, 16, 32])
    parser.add_argument(
        '--max-snr',
        type=float,
        default=-5.0,
        help='highest SNR (dB) evaluated: above -5 dB the DML fit has no '
        'gross errors and sits at sqrt(CRB) on the regime benchmark, and '
        'the posterior becomes narrower than the grid')
    parser.add_argument(
        '--grid-step',
        type=float,
        default=0.5,
        help='posterior grid (degrees)')
    parser.add_argument('--resamples', type=int, default=2000)
    parser.add_argument(
        '--seed', type=int, default=7, help='seed of the test scenes')
    parser.add_argument(
        '--workers', type=int, default=2, help='processes over scenes')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        default=[],
        help='config overrides KEY=VALUE, e.g. geometry.rows=4')
    parser.add_argument('--out', default='work_dirs/bench_ris/headroom.json')
    return parser.parse_args(argv)


class SceneEstimator:
    """The three columns' estimates and squared errors for one scene.

    Args:
        cfg: The task config: its ``test_evaluator`` gives the array, the
            search box and the DML fit; the posterior's prior is uniform
            over the same box, which must be the box the test scenes are
            drawn from.
        grid_step: The posterior grid (degrees).
    """

    def __init__(self, cfg, grid_step: float) -> None:
        from engine_plugins.evaluation.ris import (DMLSearch, MusicEstimator,
                                                   SingleSourcePosterior)
        from engine_plugins.registry import METRICS
        self.metric = METRICS.build(
            dict(cfg.test_evaluator, select_by_fit=False, smoothing=False))
        search = self.metric.search
        drawn = cfg.test_dataloader.dataset
        for key in ('az_range', 'el_range'):
            if list(drawn.get(key, search[key])) != list(search[key]):
                raise SystemExit(
                    f'test_dataloader.dataset.{key}={list(drawn[key])} but '
                    f'test_evaluator.{key}={list(search[key])}: the '
                    'posterior\'s prior must be the box the scenes are drawn '
                    'from; set both to the same range')
        music = MusicEstimator(
            self.metric.geometry,
            az_range=search['az_range'],
            el_range=search['el_range'],
            grid_step=grid_step)
        self.posterior = SingleSourcePosterior(DMLSearch(music))
        self.centre = music.grid.mean(0)

    def __call__(self, sample: dict) -> dict:
        """Squared errors of the columns on one single-source scene.

        Args:
            sample: A dataset scene's ``data_samples`` as numpy arrays.

        Returns:
            ``<column>`` squared error (deg^2, summed over az/el),
            ``centre_<column>`` squared distance of the estimate from the
            box centre (``centre_truth``: of the true direction), ``snr``,
            ``count`` (angle components) and ``sqrt_crb`` (``count`` times
            the CRB's MSE, as in ``RISDoAMetric`` records: its RMSE over
            scenes is sqrt(CRB)).
        """
        import numpy as np

        from engine_plugins.evaluation.ris import (crb_mse_deg2,
                                                   single_source_parameters)
        cov = sample['cov'].astype(np.complex128)
        snapshots = int(sample['num_snapshots'])
        true = sample['angles'][:1]
        power = float(sample['source_cov'][0, 0].real)
        noise = float(sample['noise_power'])
        dml = self.metric.dml(cov, 1)
        estimated = single_source_parameters(self.metric.geometry, cov, dml)
        estimates = dict(
            dml=dml,
            posterior_mean=self.posterior.mean(cov, snapshots, power, noise),
            posterior_mean_estimated=self.posterior.mean(
                cov, snapshots, *estimated),
            truth=true)
        record = {}
        for name, est in estimates.items():
            if name != 'truth':
                record[name] = float(((est - true)**2).sum())
            record[f'centre_{name}'] = float(((est - self.centre)**2).sum())
        record.update(
            snr=float(sample['snr_db']),
            count=true.size,
            sqrt_crb=float(
                true.size *
                crb_mse_deg2(self.metric.geometry, true,
                             sample['source_cov'][:1, :1], noise, snapshots)))
        return record


_WORKER = None


def _estimate(sample: dict) -> dict:
    return _WORKER(sample)


def summarize(records: List[dict], resamples: int, rng) -> Dict:
    """Statistics of a group of scene records.

    Args:
        records: :class:`SceneEstimator` records.
        resamples: Bootstrap resamples.
        rng: numpy Generator of the resamples.

    Returns:
        ``sources``; per column ``rmse_``, ``ci_`` (95%), ``gross_``
        (fraction above 5 deg) and ``centre_`` (RMS distance from the box
        centre, also for ``truth``); ``rmse_sqrt_crb``; per posterior mean
        ``<column>_minus_dml`` (difference and paired 95% interval) and
        ``reduction_<column>`` (``1 - RMSE / RMSE of the DML fit``).
    """
    import numpy as np

    from engine_plugins.evaluation.ris.bootstrap import (bootstrap_indices,
                                                         difference_interval,
                                                         rmse_interval)
    index = bootstrap_indices(len(records), resamples, rng)
    count = [r['count'] for r in records]
    out = dict(sources=len(records))
    for column in COLUMNS + ('sqrt_crb', ):
        sq = [r[column] for r in records]
        rmse, lo, hi = rmse_interval(sq, count, index)
        out[f'rmse_{column}'], out[f'ci_{column}'] = rmse, [lo, hi]
        if column != 'sqrt_crb':
            out[f'gross_{column}'] = float(np.mean(np.sqrt(sq) > GROSS_DEG))
    for column in COLUMNS + ('truth', ):
        out[f'centre_{column}'] = float(
            np.sqrt(np.mean([r[f'centre_{column}'] for r in records])))
    for column in COLUMNS[1:]:
        diff, lo, hi = difference_interval([r[column] for r in records],
                                           [r['dml'] for r in records], count,
                                           index)
        out[f'{column}_minus_dml'] = [diff, lo, hi]
        out[f'reduction_{column}'] = 1.0 - (
            out[f'rmse_{column}'] / out['rmse_dml'])
    return out


def main(argv=None) -> dict:
    args = parse_args(argv)
    for var in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
        os.environ.setdefault(var, '1')
    import multiprocessing

    import numpy as np
    from mmengine.config import DictAction

    from benchmarks.machine import describe
    from engine_plugins.registry import DATASETS
    from engine_plugins.utils import load_config
    global _WORKER
    options = {}
    for item in args.cfg_options:
        key, _, value = item.partition('=')
        options[key] = DictAction._parse_iterable(value)
    cfg = load_config(args.config, options)
    _WORKER = SceneEstimator(cfg, args.grid_step)
    snrs = list(cfg.test_dataloader.dataset.snr_db)
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    cells, pooled = [], {}
    with multiprocessing.get_context('fork').Pool(args.workers) as pool:
        for t in args.snapshots:
            dataset = DATASETS.build(
                dict(
                    cfg.test_dataloader.dataset,
                    num_snapshots=t,
                    correlation=0.0,
                    num_samples=args.scenes * len(snrs),
                    seed=args.seed,
                    cache_dir=None))
            samples = []
            for i in range(len(dataset)):
                s = {
                    k: v.numpy()
                    for k, v in dataset[i]['data_samples'].items()
                }
                if int(s['num_sources']) == 1 and s['snr_db'] <= args.max_snr:
                    samples.append(s)
            if not samples:
                raise SystemExit(
                    f'no single-source test scene at or below --max-snr '
                    f'{args.max_snr:g} dB (the config\'s SNRs: {snrs}) with '
                    f'--scenes {args.scenes}; raise either')
            records = pool.map(_estimate, samples, chunksize=8)
            for snr in sorted({r['snr'] for r in records}):
                group = [r for r in records if r['snr'] == snr]
                cells.append(
                    dict(
                        num_snapshots=t,
                        snr=snr,
                        **summarize(group, args.resamples, rng)))
            pooled[f'T={t}'] = records
            print(f'T = {t}: {len(records)} single-source scenes', flush=True)
    result = dict(
        config=args.config,
        cfg_options=args.cfg_options,
        scenes_per_cell=args.scenes,
        seed=args.seed,
        grid_step=args.grid_step,
        max_snr=args.max_snr,
        machine=describe(),
        seconds=round(time.perf_counter() - start, 1),
        cells=cells,
        pooled={
            name: summarize(records, args.resamples, rng)
            for name, records in pooled.items()
        })
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(result, f, indent=1)
    print(markdown_table(result))
    print(f'results in {args.out}')
    return result


def _interval(summary: dict, column: str) -> str:
    lo, hi = summary[f'ci_{column}']
    return (f"{summary[f'rmse_{column}']:.3g} [{lo:.3g}, {hi:.3g}] "
            f"({100 * summary[f'gross_{column}']:.0f}%)")


def markdown_table(result: dict) -> str:
    """One row per cell and per T pooled over its SNRs: RMSE [95%
    interval] (gross %) of each column, sqrt(CRB), and the oracle
    posterior mean minus the DML fit with its paired interval; then, per
    T, the RMS distance of the estimates from the centre of the box."""
    lines = [
        result['machine'],
        f"{result['seconds']} s; single-source scenes, grid "
        f"{result['grid_step']} deg; RMSE in degrees [95% interval] "
        f'(errors > {GROSS_DEG:g} deg)', '',
        '| T | SNR dB | sources | DML fit | posterior mean (true SNR) '
        '| posterior mean (estimated powers) | sqrt(CRB) | oracle - DML '
        '[95%] |', '| --- ' * 8 + '|'
    ]
    rows = [(str(c['num_snapshots']), f"{c['snr']:g}", c)
            for c in result['cells']]
    rows += [(name, 'pooled', s) for name, s in result['pooled'].items()]
    for t, snr, s in rows:
        diff, lo, hi = s['posterior_mean_minus_dml']
        lines.append(f"| {t} | {snr} | {s['sources']} | " +
                     ' | '.join(_interval(s, c) for c in COLUMNS) +
                     f" | {s['rmse_sqrt_crb']:.3g} | {diff:+.3g} "
                     f'[{lo:+.3g}, {hi:+.3g}] |')
    lines += [
        '', 'RMS distance from the centre of the search box (deg)', '',
        '| T | truth | ' + ' | '.join(COLUMNS) + ' |',
        '| --- ' * (len(COLUMNS) + 2) + '|'
    ]
    for name, s in result['pooled'].items():
        lines.append(f"| {name} | {s['centre_truth']:.3g} | " +
                     ' | '.join(f"{s[f'centre_{c}']:.3g}"
                                for c in COLUMNS) + ' |')
    return '\n'.join(lines)


if __name__ == '__main__':
    main()
