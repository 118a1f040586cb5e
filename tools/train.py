"""Train a model from a config.

Example:
    python tools/train.py configs/psalm_yolo_h100.py --amp
    bash tools/dist_train.sh configs/psalm_yolo_h100.py 8
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
from mmengine.optim import AmpOptimWrapper, OptimWrapper  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

from engine_plugins.compat import apply_runtime_fixes  # noqa: E402
from engine_plugins.engine.hooks import SanityHook  # noqa: E402
from engine_plugins.engine.overfit import \
    RESULT_KEY as OVERFIT_RESULT  # noqa: E402,E501
from engine_plugins.engine.overfit import make_overfit_config  # noqa: E402
from engine_plugins.engine.sanity.causes import CAUSES  # noqa: E402
from engine_plugins.registry import OPTIM_WRAPPERS  # noqa: E402
from engine_plugins.utils import build_runner, load_config  # noqa: E402
from engine_plugins.utils.config_loading import (  # noqa: E402
    add_strictness_arguments, apply_strictness_arguments)
from engine_plugins.utils.preflight import preflight_or_exit  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='automatic mixed precision: fp16 (dynamic loss scale) on GPU, '
        'bf16 on CPU')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the lr linearly with the total batch size, relative to '
        'auto_scale_lr.base_batch_size in the config')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from CKPT; without CKPT, from the latest checkpoint in '
        'the work dir')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config keys, e.g. optim_wrapper.optimizer.lr=0.01 '
        "'train_cfg.max_epochs=3'")
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument(
        '--overfit-batches',
        type=int,
        metavar='N',
        help='sanity run: train on the first N batches only and report '
        'whether the loss fell by --overfit-factor (exit code 1 if not)')
    parser.add_argument(
        '--overfit-iters',
        type=int,
        default=200,
        help='iterations of the --overfit-batches run (default 200)')
    parser.add_argument(
        '--diagnose-on-exit',
        action='store_true',
        help='when the run ends (finished or stopped by an error), write '
        'the post-mortem report to WORK_DIR/diagnosis.html (and .md)')
    add_strictness_arguments(parser)
    parser.add_argument(
        '--overfit-factor',
        type=float,
        default=10.0,
        help='loss drop required by --overfit-batches (default 10)')
    # torch.distributed.launch passes --local-rank (older: --local_rank).
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def amp_wrapper_type(name: str) -> str:
    """The AMP variant of optim wrapper ``name`` (a class may name it in
    ``amp_variant``)."""
    wrapper = OPTIM_WRAPPERS.get(name)
    if wrapper is None:
        raise KeyError(f'unknown optim_wrapper.type {name!r}')
    if issubclass(wrapper, AmpOptimWrapper):
        return name
    if wrapper is OptimWrapper:
        return 'AmpOptimWrapper'
    variant = getattr(wrapper, 'amp_variant', None)
    if variant is None:
        raise ValueError(
            f'--amp: optim_wrapper type {name!r} has no AMP variant; set '
            'optim_wrapper.type to an AMP wrapper in the config instead')
    return variant


def build_cfg(args: argparse.Namespace, check_files: bool = True):
    """The config the Runner gets. ``check_files=False`` leaves the
    ``--resume CKPT`` file to :func:`preflight_or_exit`, which reports it
    with every other missing input."""
    cfg = load_config(args.config, args.cfg_options, args.work_dir,
                      args.launcher)
    apply_strictness_arguments(cfg, args)
    if args.amp:
        cfg.optim_wrapper.type = amp_wrapper_type(
            cfg.optim_wrapper.get('type', 'OptimWrapper'))
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.auto_scale_lr:
        if 'base_batch_size' not in cfg.get('auto_scale_lr', {}):
            raise ValueError(
                '--auto-scale-lr needs auto_scale_lr.base_batch_size in the '
                f'config {args.config}, e.g. auto_scale_lr = dict('
                'enable=False, base_batch_size=16)')
        cfg.auto_scale_lr.enable = True
    if args.overfit_batches is not None:
        if args.resume is not None:
            raise ValueError('--overfit-batches cannot be combined with '
                             '--resume')
        cfg = make_overfit_config(cfg, args.overfit_batches,
                                  args.overfit_iters, args.overfit_factor)
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        if check_files and not osp.isfile(args.resume):
            raise FileNotFoundError(
                f'--resume: checkpoint not found: {args.resume}')
        cfg.resume = True
        cfg.load_from = args.resume
    return cfg


def _diagnose(work_dir: str) -> None:
    """Write the report; a failure to write it must not hide the run's
    own outcome."""
    from engine_plugins.diagnosis import diagnose_work_dir
    try:
        diag, html_path, _ = diagnose_work_dir(work_dir)
    except Exception as exc:  # noqa: BLE001
        print(f'diagnose: could not write the report: {exc!r}',
              file=sys.stderr)
        return
    print(f'diagnosis ({diag.verdict}): {html_path}', file=sys.stderr)


def main(argv=None) -> Runner:
    args = parse_args(argv)
    apply_runtime_fixes()
    cfg = build_cfg(args, check_files=False)
    # Missing data, checkpoints or GPU-only settings: one message and exit
    # status 2, before anything is built.
    resumes_file = args.resume not in (None, 'auto')
    labels = {'load_from': '--resume'} if resumes_file else None
    preflight_or_exit(cfg, 'train', 'tools/train.py', args.config, labels)
    runner = build_runner(cfg)
    try:
        runner.train()
    except Exception as exc:
        if getattr(exc, 'cause', None) not in CAUSES:
            if args.diagnose_on_exit:
                _diagnose(runner.work_dir)
            raise
        # Errors that a model, loss or dataset raised by itself reach the
        # event log here: hooks see no exceptions.
        for hook in runner.hooks:
            if isinstance(hook, SanityHook):
                hook.record_escaped(exc, runner.log_dir)
        if args.diagnose_on_exit:
            _diagnose(runner.work_dir)
        else:
            print(
                f'\nThis run was stopped: {CAUSES[exc.cause].title} '
                f'[{exc.cause}]. The '
                'post-mortem, with plots and the timeline:\n'
                f'    python tools/diagnose.py {runner.work_dir}\n',
                file=sys.stderr)
        raise
    except BaseException:  # KeyboardInterrupt, SystemExit
        if args.diagnose_on_exit:
            _diagnose(runner.work_dir)
        raise
    if args.diagnose_on_exit:
        _diagnose(runner.work_dir)
    return runner


if __name__ == '__main__':
    runner = main()
    if runner.message_hub.get_info(OVERFIT_RESULT) is False:
        sys.exit(1)
