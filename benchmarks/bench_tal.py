"""YOLOv8TaskAlignedAssigner against a dense reference, in one run.

The reference (``tests/test_task_modules/dense_reference_tal.py``) is the
straightforward form of the same algorithm: CIoU and metrics for every
(image, GT, anchor) triple at once. Ours computes CIoU only for candidate
anchors (centre inside the GT) and goes per image above ``max_elements``.

Problems: batch 16 at 640 px, with P2 (strides 4-32: 34 000 anchors) and
without (strides 8-32: 8 400 anchors), 5 / 30 / 150 GTs per image, 80
classes. Per case: median seconds per call, peak extra memory (CUDA:
allocator peak; CPU: resident-set peak via ``/proc/self/clear_refs``), the
time and memory ratios, and whether every output is identical. Calls of
the two implementations alternate so machine noise hits both alike::

    python benchmarks/bench_tal.py [--device cpu|cuda] [--repeats 3]
        [--gts 5 30 150]
"""
import argparse
import ctypes
import ctypes.util
import os.path as osp
import statistics
import sys
import time

# From a clone, measure the clone's package, not an installed copy.
_REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, _REPO)

import torch  # noqa: E402

from engine_plugins.task_modules import (  # noqa: E402
    YOLOv8TaskAlignedAssigner, make_anchor_points)
from tests.test_task_modules.dense_reference_tal import \
    dense_reference_tal  # noqa: E402

NUM_CLASSES = 80
_LIBC = ctypes.CDLL(ctypes.util.find_library('c'))


def make_problem(num_gts: int, strides, batch: int = 16, size: int = 640,
                 seed: int = 0, device: str = 'cpu'):
    gen = torch.Generator().manual_seed(seed)
    shapes = [(size // s, size // s) for s in strides]
    points, stride_of = make_anchor_points(shapes, strides)
    points = points * stride_of  # grid units -> pixels
    num_anchors = len(points)
    # GT sizes log-uniform in 8..320 px, fully inside the image.
    wh = torch.exp(
        torch.empty(batch, num_gts, 2).uniform_(2.08, 5.77, generator=gen))
    xy = torch.rand(batch, num_gts, 2, generator=gen) * (size - wh)
    gts = torch.cat([xy, xy + wh], -1)
    pad = torch.ones(batch, num_gts, dtype=torch.bool)
    labels = torch.randint(0, NUM_CLASSES, (batch, num_gts), generator=gen)
    # Predictions: boxes around each anchor, a few strides wide.
    half = (torch.rand(batch, num_anchors, 2, generator=gen) * 3 + 0.5) * \
        stride_of
    shift = (torch.rand(batch, num_anchors, 2, generator=gen) - 0.5) * \
        stride_of
    centre = points + shift
    preds = torch.cat([centre - half, centre + half], -1)
    scores = torch.sigmoid(
        torch.randn(batch, num_anchors, NUM_CLASSES, generator=gen) - 2)
    problem = (scores, preds, points, labels, gts, pad)
    return tuple(t.to(device) for t in problem)


class PeakMemory:
    """Peak extra memory of a block, in MiB."""

    def __init__(self, device: str) -> None:
        self.device = device

    def __enter__(self):
        if self.device == 'cuda':
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        else:
            # Return freed heap pages first, or a reused free block would
            # not show in the resident-set peak.
            _LIBC.malloc_trim(0)
            with open('/proc/self/clear_refs', 'w') as f:
                f.write('5')  # resets VmHWM to the current RSS
            self.base = self._status('VmRSS')
        return self

    def __exit__(self, *exc):
        if self.device == 'cuda':
            torch.cuda.synchronize()
            self.mib = (torch.cuda.max_memory_allocated() - self.base) / 2**20
        else:
            self.mib = (self._status('VmHWM') - self.base) / 2**20

    @staticmethod
    def _status(key: str) -> int:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(key + ':'):
                    return int(line.split()[1]) * 1024
        raise RuntimeError(f'{key} not in /proc/self/status')


def run_case(num_gts, strides, device, repeats):
    problem = make_problem(num_gts, strides, device=device)
    assigner = YOLOv8TaskAlignedAssigner(num_classes=NUM_CLASSES)
    impls = dict(
        ours=lambda: tuple(assigner.assign(*problem)),
        dense=lambda: dense_reference_tal(
            *problem, num_classes=NUM_CLASSES))
    times = {k: [] for k in impls}
    peaks = {k: 0.0 for k in impls}
    outs = {}
    for _ in range(repeats):
        for name, fn in impls.items():
            with PeakMemory(device) as mem:
                start = time.perf_counter()
                outs[name] = fn()
                if device == 'cuda':
                    torch.cuda.synchronize()
                times[name].append(time.perf_counter() - start)
            peaks[name] = max(peaks[name], mem.mib)
            outs[name] = tuple(t.cpu() for t in outs[name])
    ours, dense = outs['ours'], outs['dense']
    fg = ours[3]
    identical = (
        torch.equal(ours[3], dense[3]) and torch.equal(ours[0], dense[0])
        and torch.equal(ours[4][fg], dense[4][fg])
        and torch.equal(ours[1], dense[1])
        and torch.allclose(ours[2], dense[2], atol=1e-6, rtol=1e-4))
    return ({k: statistics.median(v) for k, v in times.items()}, peaks,
            identical, int(fg.sum()))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--gts', type=int, nargs='+', default=[5, 30, 150])
    args = parser.parse_args(argv)
    print(f'device={args.device} torch={torch.__version__} '
          f'threads={torch.get_num_threads()} repeats={args.repeats}')
    header = (f'{"levels":>7} {"anchors":>7} {"GTs":>4} {"pos":>6} '
              f'{"ours s":>8} {"dense s":>8} {"time x":>7} '
              f'{"ours MiB":>9} {"dense MiB":>9} {"mem x":>7} identical')
    print(header)
    all_identical = True
    for strides in ((4, 8, 16, 32), (8, 16, 32)):
        levels = 'P2-P5' if strides[0] == 4 else 'P3-P5'
        anchors = sum((640 // s)**2 for s in strides)
        for num_gts in args.gts:
            times, peaks, identical, pos = run_case(num_gts, strides,
                                                    args.device, args.repeats)
            all_identical &= identical
            print(f'{levels:>7} {anchors:>7} {num_gts:>4} {pos:>6} '
                  f'{times["ours"]:>8.3f} {times["dense"]:>8.3f} '
                  f'{times["dense"] / times["ours"]:>7.2f} '
                  f'{peaks["ours"]:>9.0f} {peaks["dense"]:>9.0f} '
                  f'{peaks["dense"] / max(peaks["ours"], 1):>7.2f} '
                  f'{identical}')
    print('ratios are dense / ours: above 1 means ours is faster or smaller')
    return 0 if all_identical else 1


if __name__ == '__main__':
    sys.exit(main())
