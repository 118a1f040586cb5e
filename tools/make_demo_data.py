"""Write the demo shapes dataset (COCO format) used by the quick-start
configs. Training writes it on first use; this tool writes it ahead.

    python tools/make_demo_data.py data/demo_shapes --num-train 256
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from engine_plugins.datasets import demo_shapes  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('root', help='output folder')
    defaults = demo_shapes.DEFAULTS
    parser.add_argument(
        '--num-train', type=int, default=defaults['num_train'])
    parser.add_argument('--num-val', type=int, default=defaults['num_val'])
    parser.add_argument('--seed', type=int, default=defaults['seed'])
    args = parser.parse_args(argv)
    try:
        cfg = demo_shapes.write_demo_shapes(
            args.root, num_train=args.num_train, num_val=args.num_val,
            seed=args.seed)
    except ValueError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    print(f'demo shapes in {args.root}: {cfg["num_train"]} train, '
          f'{cfg["num_val"]} val images')
    return 0


if __name__ == '__main__':
    sys.exit(main())
