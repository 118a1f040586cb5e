"""Overhead of the grad-sanity checks on a mid-size model.

Trains mmdet's ResNet-18 with a small classification head three ways in
one process, interleaving single iterations so machine noise hits all of
them alike:

* ``off``     — mmengine's plain ``OptimWrapper``;
* ``default`` — ``GradSanityOptimWrapper`` as the default runtime
  configures it (strict on the first 3 iterations, then every 50);
* ``strict``  — every iteration fully checked.

Prints seconds per iteration and the ratios to ``off``. Usage::

    python benchmarks/bench_sanity_overhead.py [--iters 200]
        [--device cpu|cuda] [--size 96] [--batch 8]

The ratio uses mean times, so the default's periodic checks (every 50th
iteration) and its 3 strict iterations are amortized as in a real run.
"""
import argparse
import os.path as osp
import statistics
import sys
import time

# From a clone, measure the clone's package, not an installed copy.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from mmdet.models.backbones import ResNet  # noqa: E402
from mmengine.model import BaseModel  # noqa: E402
from mmengine.optim import OptimWrapper  # noqa: E402

import engine_plugins  # noqa: E402,F401
from engine_plugins.engine import GradSanityOptimWrapper  # noqa: E402


class ResNetClassifier(BaseModel):

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.backbone = ResNet(depth=18, out_indices=(3, ))
        self.head = nn.Linear(512, num_classes)

    def forward(self, inputs, labels=None, mode='loss'):
        feat = self.backbone(inputs)[-1].mean((2, 3))
        return dict(loss_cls=F.cross_entropy(self.head(feat), labels))


def make(kind: str, device: str):
    torch.manual_seed(0)
    model = ResNetClassifier().to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    if kind == 'off':
        return model, OptimWrapper(optimizer=optimizer)
    wrapper = GradSanityOptimWrapper(optimizer=optimizer)
    strict = 10**9 if kind == 'strict' else 3
    wrapper.configure_sanity(model=model, strict_iters=strict, interval=50)
    parse_losses = model.parse_losses

    def recording(losses):  # what GradSanityHook installs
        wrapper.record_losses(losses)
        return parse_losses(losses)

    model.parse_losses = recording
    return model, wrapper


def timed_step(model, wrapper, batch, device: str) -> float:
    if device == 'cuda':
        torch.cuda.synchronize()
    start = time.perf_counter()
    model.train_step(batch, wrapper)
    if device == 'cuda':
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--iters', type=int, default=200)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--size', type=int, default=96)
    parser.add_argument('--batch', type=int, default=8)
    args = parser.parse_args()
    # A pool of random batches: training on one fixed batch overfits it,
    # and the tiny gradients that follow hit slow denormal paths on CPU.
    torch.set_flush_denormal(True)
    gen = torch.Generator().manual_seed(0)
    batches = [
        dict(
            inputs=torch.randn(
                args.batch, 3, args.size, args.size, generator=gen).to(
                    args.device),
            labels=torch.randint(0, 10, (args.batch, ), generator=gen).to(
                args.device)) for _ in range(8)
    ]
    kinds = ('off', 'default', 'strict')
    runs = {kind: make(kind, args.device) for kind in kinds}
    for kind in kinds:
        for _ in range(3):  # warm-up (not counted as the run's start)
            timed_step(*runs[kind], batches[0], args.device)
        if kind != 'off':
            runs[kind][1].sanity_iter = 0
    # Round-robin single iterations: machine noise hits all variants alike.
    times = {kind: [] for kind in kinds}
    for i in range(args.iters):
        for kind in kinds[i % 3:] + kinds[:i % 3]:
            times[kind].append(
                timed_step(*runs[kind], batches[i % len(batches)],
                           args.device))
    base = statistics.mean(times['off'])
    print(f'ResNet-18 {args.size}x{args.size}, batch {args.batch}, '
          f'{args.device}, {args.iters} iterations per variant '
          '(round-robin)')
    print(f'{"checks":<8} {"mean s/iter":>12} {"median":>8} {"ratio":>7}')
    for kind in kinds:
        mean = statistics.mean(times[kind])
        print(f'{kind:<8} {mean:12.4f} {statistics.median(times[kind]):8.4f}'
              f' {mean / base:7.3f}')


if __name__ == '__main__':
    main()
