"""RMSE vs SNR on the quick-start geometry: the trained network, MUSIC on
the sample covariance, and sqrt(CRB).

Trains the config through the normal Runner for ``--iters`` iterations,
then evaluates the fixed test split (``RISDoAMetric`` prints the table)
and writes the metrics, the wall times and the settings to ``--out``
(JSON; ``tools/plot_ris_rmse.py`` draws it). Usage::

    python benchmarks/bench_ris_rmse.py [--config CONFIG] [--iters 1500]
        [--threads 1] [--out work_dirs/bench_ris/rmse.json]
"""
import argparse
import json
import os
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

DEFAULT_CONFIG = 'configs/ris/ris_upa8x8_cpu.py'


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', default=DEFAULT_CONFIG)
    parser.add_argument('--iters', type=int, default=None,
                        help='training iterations (default: the config)')
    parser.add_argument('--test-samples', type=int, default=None,
                        help='test scenes (default: the config)')
    parser.add_argument(
        '--threads', type=int, default=1,
        help='torch/BLAS threads; 1 by default: on a busy 2-core machine '
        'batched 64x64 complex eigh was ~300x and scene simulation ~30x '
        'slower with 2 threads than with 1')
    parser.add_argument('--work-dir', default='work_dirs/bench_ris')
    parser.add_argument(
        '--cfg-options', nargs='+', default={},
        help='config overrides KEY=VALUE, e.g. model.residual=True')
    parser.add_argument('--out', default=None,
                        help='JSON output (default: WORK_DIR/rmse.json)')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    # Before numpy/torch load their BLAS: the simulation's small matrix
    # products were ~30x slower with 2 BLAS threads than with 1 here.
    for var in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
        os.environ.setdefault(var, str(args.threads))
    import torch
    torch.set_num_threads(args.threads)
    from mmengine.config import DictAction

    from engine_plugins.utils import build_runner, load_config
    options = {}
    for item in args.cfg_options:
        key, _, value = item.partition('=')
        options[key] = DictAction._parse_iterable(value)
    cfg = load_config(args.config, options, work_dir=args.work_dir)
    if args.iters is not None:
        cfg.train_cfg.update(max_iters=args.iters, val_interval=args.iters)
        cfg.default_hooks.checkpoint.interval = args.iters
    if args.test_samples is not None:
        cfg.test_dataloader.dataset.num_samples = args.test_samples
    runner = build_runner(cfg)
    start = time.perf_counter()
    runner.train()
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    metrics = runner.test()
    test_s = time.perf_counter() - start
    result = dict(
        config=args.config,
        cfg_options=args.cfg_options,
        iters=cfg.train_cfg.max_iters,
        threads=args.threads,
        train_seconds=round(train_s, 1),
        test_seconds=round(test_s, 1),
        test_samples=cfg.test_dataloader.dataset.num_samples,
        metrics={k: float(v) for k, v in metrics.items()})
    out = args.out or osp.join(args.work_dir, 'rmse.json')
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    with open(out, 'w') as f:
        json.dump(result, f, indent=1)
    from benchmarks.machine import describe
    print(describe())
    print(f'train {train_s:.1f} s ({result["iters"]} iterations), test '
          f'{test_s:.1f} s; metrics in {out}')
    return result


if __name__ == '__main__':
    main()
