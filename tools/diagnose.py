"""Write the post-mortem of a training run.

Example:
    python tools/diagnose.py work_dirs/psalm_yolo_n_shapes_cpu
    python tools/diagnose.py WORK_DIR --checkpoint WORK_DIR/iter_500.pth \
        --out report.html
"""
import argparse
import os.path as osp
import sys

# From a clone, use the clone's package even if another copy is installed.
_REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
if osp.isdir(osp.join(_REPO, 'engine_plugins')):
    sys.path.insert(0, _REPO)

import engine_plugins  # noqa: E402,F401  (registers the models' statistics)
import engine_plugins.models  # noqa: E402,F401
from engine_plugins.diagnosis import diagnose_work_dir  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Write the post-mortem of a training run (HTML with '
        'embedded plots, and Markdown)')
    parser.add_argument('work_dir', help='the run\'s --work-dir')
    parser.add_argument(
        '--checkpoint',
        help='a checkpoint to audit: weights that never moved since the '
        'first checkpoint, non-finite weights, EMA vs live weights')
    parser.add_argument(
        '--out',
        help='HTML path (default WORK_DIR/diagnosis.html); the Markdown '
        'is written next to it')
    parser.add_argument(
        '--run', help='a run folder (YYYYMMDD_HHMMSS) of the work dir; '
        'default: the newest')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        diag, html_path, md_path = diagnose_work_dir(
            args.work_dir, args.out, args.checkpoint, args.run)
    except FileNotFoundError as exc:
        print(f'diagnose: {exc}', file=sys.stderr)
        return 2
    print(f'verdict: {diag.verdict}')
    for rank, cause in enumerate(diag.causes[:5], 1):
        at = f' (iteration {cause.first_iter})' \
            if cause.first_iter is not None else ''
        print(f'  {rank}. [{cause.cause}] {cause.title}{at}')
        print(f'     look at: {cause.where}')
        print(f'     fix: {cause.fix}')
    for note in diag.missing:
        print(f'  missing: {note}')
    print(f'report: {html_path}\n        {md_path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
