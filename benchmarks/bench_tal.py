"""YOLOv8TaskAlignedAssigner against ultralytics' TaskAlignedAssigner.

Both run in the same process on the same problems: a 640 px input with
P3-P5 (strides 8-32: 8 400 anchors) or P2-P5 (strides 4-32: 34 000
anchors), batch 2 / 8 / 16, 0 / 5 / 30 / 150 GTs per image, 80 classes.
The reference is ultralytics 8.2.103 (``pip install --no-deps
ultralytics==8.2.103``, imported offline, see
``tests/reference_ultralytics.py``), configured as YOLOv8's loss uses it
(topk 10, alpha 0.5, beta 6).

Per case: median seconds per call, peak extra memory (CUDA: allocator
peak; CPU: resident-set peak via ``/proc/self/clear_refs``), the ratios
(reference / ours: above 1 means ours is faster or smaller) and whether
the outputs are identical: equal soft targets, and equal labels, boxes and
GT indices on every positive anchor. ultralytics may also mark anchors
with a zero metric positive (their target is 0); those are counted in the
``zero-pos`` column and must have a zero target. Calls alternate so machine
noise hits both alike::

    python benchmarks/bench_tal.py [--device cpu|cuda] [--repeats 3]
        [--batches 2 8 16] [--gts 0 5 30 150] [--levels P3-P5 P2-P5]
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

from benchmarks.machine import describe  # noqa: E402
from engine_plugins.task_modules import (  # noqa: E402
    YOLOv8TaskAlignedAssigner, make_anchor_points)
from tests import reference_ultralytics as oracle  # noqa: E402

NUM_CLASSES = 80
LEVELS = {'P3-P5': (8, 16, 32), 'P2-P5': (4, 8, 16, 32)}
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


def compare(ours, ref):
    """(identical, zero-metric positives of the reference)."""
    fg, ref_fg = ours[3], ref[3].bool()
    extra = ref_fg & ~fg
    identical = (
        not bool((fg & ~ref_fg).any())
        and float(ref[2][extra].abs().sum()) == 0.0
        and torch.allclose(ours[2], ref[2], atol=1e-6, rtol=1e-5)
        and torch.equal(ours[0][fg], ref[0][fg].long())
        and torch.equal(ours[1][fg], ref[1][fg])
        and torch.equal(ours[4][fg], ref[4][fg]))
    return identical, int(extra.sum())


def run_case(reference, batch, num_gts, strides, device, repeats):
    problem = make_problem(num_gts, strides, batch=batch, device=device)
    scores, preds, points, labels, gts, pad = problem
    assigner = YOLOv8TaskAlignedAssigner(num_classes=NUM_CLASSES)
    impls = dict(
        ours=lambda: tuple(assigner.assign(*problem)),
        ref=lambda: tuple(
            reference(scores, preds, points, labels[..., None], gts,
                      pad[..., None].float())))
    times = {k: [] for k in impls}
    peaks = {k: 0.0 for k in impls}
    outs = {}
    for _ in range(repeats):
        for name, fn in impls.items():
            outs.pop(name, None)  # free the last result before measuring
            with PeakMemory(device) as mem:
                start = time.perf_counter()
                outs[name] = fn()
                if device == 'cuda':
                    torch.cuda.synchronize()
                times[name].append(time.perf_counter() - start)
            peaks[name] = max(peaks[name], mem.mib)
    ours = tuple(t.cpu() for t in outs['ours'])
    ref = tuple(t.cpu() for t in outs['ref'])
    identical, zero_pos = compare(ours, ref)
    return ({k: statistics.median(v) for k, v in times.items()}, peaks,
            identical, int(ours[3].sum()), zero_pos)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--batches', type=int, nargs='+', default=[2, 8, 16])
    parser.add_argument(
        '--gts', type=int, nargs='+', default=[0, 5, 30, 150])
    parser.add_argument(
        '--levels', nargs='+', choices=sorted(LEVELS),
        default=['P3-P5', 'P2-P5'])
    args = parser.parse_args(argv)
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: torch sees no CUDA device here')
    modules = oracle.import_ultralytics('ultralytics.utils.tal')
    if modules is None:
        parser.error('the reference is missing: pip install --no-deps '
                     f'ultralytics=={oracle.ORACLE_VERSION}')
    reference = modules[0].TaskAlignedAssigner(
        topk=10, num_classes=NUM_CLASSES, alpha=0.5, beta=6.0)
    print(f'{describe(args.device)}, '
          f'ultralytics {oracle.ultralytics_version()}')
    print(f'repeats={args.repeats}, 640 px, {NUM_CLASSES} classes; '
          'ratios are ultralytics / ours (above 1: ours faster or smaller)')
    print(f'{"levels":>6} {"B":>3} {"GTs":>4} {"pos":>6} {"ours s":>8} '
          f'{"ultra s":>8} {"time x":>7} {"ours MiB":>9} {"ultra MiB":>9} '
          f'{"mem x":>6} {"zero-pos":>8} identical')
    all_identical = True
    for levels in args.levels:
        strides = LEVELS[levels]
        for batch in args.batches:
            for num_gts in args.gts:
                times, peaks, identical, pos, zero_pos = run_case(
                    reference, batch, num_gts, strides, args.device,
                    args.repeats)
                all_identical &= identical
                print(f'{levels:>6} {batch:>3} {num_gts:>4} {pos:>6} '
                      f'{times["ours"]:>8.4f} {times["ref"]:>8.4f} '
                      f'{times["ref"] / times["ours"]:>7.2f} '
                      f'{peaks["ours"]:>9.1f} {peaks["ref"]:>9.1f} '
                      f'{peaks["ref"] / max(peaks["ours"], 0.1):>6.2f} '
                      f'{zero_pos:>8} {identical}', flush=True)
    print('all identical' if all_identical else 'OUTPUTS DIFFER')
    return 0 if all_identical else 1


if __name__ == '__main__':
    sys.exit(main())
