"""Evaluate a checkpoint on a config's test set.

Example:
    python tools/test.py configs/psalm_yolo_h100.py work_dirs/x/epoch_12.pth
    python tools/test.py CONFIG CKPT --out results.pkl --show-dir vis/
"""
import argparse
import os
import os.path as osp
import sys

# From a clone, use the clone's package even if another copy is installed.
_REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
if osp.isdir(osp.join(_REPO, 'engine_plugins')):
    sys.path.insert(0, _REPO)

from mmengine.config import DictAction  # noqa: E402
from mmengine.evaluator import DumpResults  # noqa: E402

from engine_plugins.compat import apply_runtime_fixes  # noqa: E402
from engine_plugins.utils import build_runner, load_config  # noqa: E402
from engine_plugins.utils.config_loading import (  # noqa: E402
    add_strictness_arguments, apply_strictness_arguments)
from engine_plugins.utils.preflight import preflight_or_exit  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help='the dir to save the file containing evaluation metrics')
    parser.add_argument(
        '--out',
        type=str,
        help='dump predictions to a pickle file (.pkl / .pickle) for '
        'offline evaluation')
    parser.add_argument(
        '--show-dir',
        help='directory where painted images are saved (tasks with a '
        'visualization hook)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config keys, e.g. test_dataloader.batch_size=4')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    add_strictness_arguments(parser)
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def build_cfg(args: argparse.Namespace, check_files: bool = True):
    """The config the Runner gets. ``check_files=False`` leaves the
    checkpoint file to :func:`preflight_or_exit`, which reports it with
    every other missing input."""
    if check_files and not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint}')
    if args.out is not None and not args.out.endswith(('.pkl', '.pickle')):
        raise ValueError(f'--out must end with .pkl or .pickle: {args.out}')
    cfg = load_config(args.config, args.cfg_options, args.work_dir,
                      args.launcher)
    cfg.load_from = args.checkpoint
    cfg.resume = False
    apply_strictness_arguments(cfg, args)
    if args.show_dir:
        hook = cfg.get('default_hooks', {}).get('visualization')
        if hook is None:
            raise ValueError(
                f'--show-dir: the config {args.config} has no '
                'default_hooks.visualization hook to draw predictions with')
        hook.draw = True
        hook.test_out_dir = args.show_dir
    return cfg


def main(argv=None) -> dict:
    args = parse_args(argv)
    apply_runtime_fixes()
    cfg = build_cfg(args, check_files=False)
    # Missing data or checkpoint, GPU-only settings: one message and exit
    # status 2, before anything is built.
    preflight_or_exit(
        cfg,
        'test',
        'tools/test.py',
        args.config, {'load_from': 'CHECKPOINT (tools/test.py argument)'},
        arguments=[args.checkpoint])
    runner = build_runner(cfg)
    if args.out is not None:
        runner.test_evaluator.metrics.append(
            DumpResults(out_file_path=args.out))
    return runner.test()


if __name__ == '__main__':
    main()
