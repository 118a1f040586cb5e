"""Write the audio LM demo manifest (codes follow the text).

Example:
    python tools/make_audio_demo_data.py data/audio_demo --num-samples 16
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from engine_plugins.datasets.audio.demo_data import \
    make_audio_demo_data  # noqa: E402


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('out_dir')
    parser.add_argument('--num-samples', type=int, default=16)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    manifest = make_audio_demo_data(args.out_dir, args.num_samples,
                                    args.seed)
    print(f'wrote {manifest}')
    return manifest


if __name__ == '__main__':
    main()
