"""Overhead of the sanity engine, against checks off, in one process.

Models, each trained three ways with interleaved single iterations so
machine noise hits all of them alike:

* ``off``     — mmengine's plain ``OptimWrapper``, no hooks;
* ``default`` — ``GradSanityOptimWrapper`` with the monitor and probe as
  ``SanityHook`` attaches them, default settings (3 strict iterations with
  update-size snapshots, full checks every 50, one host transfer per step,
  labels and boxes of every batch);
* ``strict``  — every iteration fully checked (information).

Tasks: ``yolo`` (PSALM YOLO n, the CPU quick start's model and data at
256 px), ``audio`` (the tiny DualFFN LM with LoRA on the demo manifest),
both with their config's ``clip_grad`` in every variant (mmengine then
computes the gradient norm anyway, and the sanity wrapper clips with the
norm it checked), and ``resnet`` (mmdet's ResNet-18 with a classification
head, no clipping: the monitor's gradient-norm pass is all extra). Each
variant trains its own copy of the model from the same weights on the
same pool of batches; batches are collated once, so data loading is not
timed but the per-batch CPU checks (inside the preprocessor call) are.

Usage::

    python benchmarks/bench_sanity_overhead.py [--tasks yolo audio resnet]
        [--iters 150] [--device cpu|cuda]

Prints seconds per iteration and the ratio to ``off`` (mean over all
iterations, so the strict window and periodic checks are amortized as in
a real run), with the machine, threads and versions.
"""
import argparse
import copy
import os
import os.path as osp
import platform
import statistics
import sys
import time

# From a clone, measure the clone's package, not an installed copy.
REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

import mmengine  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from mmdet.models.backbones import ResNet  # noqa: E402
from mmengine.model import BaseModel  # noqa: E402
from mmengine.optim import OptimWrapper  # noqa: E402

import engine_plugins  # noqa: E402,F401
from benchmarks.bench_diagnosis import ensure_audio_demo_data  # noqa: E402
from engine_plugins.engine import GradSanityOptimWrapper  # noqa: E402
from engine_plugins.engine.sanity.events import SanityEvents  # noqa: E402
from engine_plugins.engine.sanity.monitor import SanityMonitor  # noqa: E402
from engine_plugins.engine.sanity.probe import TrainStepProbe  # noqa: E402
from engine_plugins.utils import build_runner, load_config  # noqa: E402

BASES = dict(
    yolo='benchmarks/mutations/bases/yolo.py',
    audio='benchmarks/mutations/bases/audio.py')


class ResNetClassifier(BaseModel):

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.backbone = ResNet(depth=18, out_indices=(3, ))
        self.head = nn.Linear(512, num_classes)

    def forward(self, inputs, labels=None, mode='loss'):
        feat = self.backbone(inputs)[-1].mean((2, 3))
        return dict(loss_cls=F.cross_entropy(self.head(feat), labels))


def resnet_task(args):
    gen = torch.Generator().manual_seed(0)
    batches = [
        dict(
            inputs=torch.randn(8, 3, 96, 96, generator=gen),
            labels=torch.randint(0, 10, (8, ), generator=gen))
        for _ in range(8)
    ]
    torch.manual_seed(0)
    model = ResNetClassifier()

    def optimizer(m):
        return torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)

    return model, optimizer, batches, None


def config_task(name: str, args):
    if name == 'audio':
        ensure_audio_demo_data()
    cfg = load_config(
        osp.join(REPO, BASES[name]),
        work_dir=osp.join(REPO, 'work_dirs', 'bench_overhead', name))
    cfg.train_dataloader.batch_size = args.batch
    runner = build_runner(cfg)
    loader = iter(runner.train_dataloader)
    batches = [next(loader) for _ in range(8)]
    model = runner.model
    optim_cfg = copy.deepcopy(cfg.optim_wrapper.optimizer)

    def optimizer(m):
        params = [p for p in m.parameters() if p.requires_grad]
        kwargs = {k: v for k, v in optim_cfg.items() if k != 'type'}
        return getattr(torch.optim, optim_cfg['type'])(params, **kwargs)

    return model, optimizer, batches, cfg.optim_wrapper.get('clip_grad')


def make(kind: str, base: nn.Module, optimizer, clip_grad, device: str):
    model = copy.deepcopy(base).to(device)
    if kind == 'off':
        return model, OptimWrapper(
            optimizer=optimizer(model), clip_grad=clip_grad), None
    wrapper = GradSanityOptimWrapper(
        optimizer=optimizer(model), clip_grad=clip_grad)
    monitor = SanityMonitor(
        SanityEvents(),
        strict_iters=10**9 if kind == 'strict' else 3,
        interval=1 if kind == 'strict' else 50,
        update_iters=3)
    probe = TrainStepProbe(model, monitor)
    monitor.bind(model, wrapper.optimizer, probe=probe)
    probe.attach()
    wrapper.sanity = monitor
    return model, wrapper, monitor


def timed_step(run, iteration: int, batch, device: str) -> float:
    model, wrapper, monitor = run
    if device == 'cuda':
        torch.cuda.synchronize()
    start = time.perf_counter()
    if monitor is not None:
        monitor.start_iter(iteration)
    model.train_step(batch, wrapper)
    if device == 'cuda':
        torch.cuda.synchronize()
    return time.perf_counter() - start


def bench(name: str, args) -> None:
    if name == 'resnet':
        base, optimizer, batches, clip_grad = resnet_task(args)
    else:
        base, optimizer, batches, clip_grad = config_task(name, args)
    kinds = ('off', 'default', 'strict')
    runs = {
        k: make(k, base, optimizer, clip_grad, args.device)
        for k in kinds
    }
    for kind in kinds:  # warm-up, not counted (and not the strict window)
        for _ in range(2):
            timed_step((*runs[kind][:2], None), 0, batches[0], args.device)
    times = {k: [] for k in kinds}
    for i in range(args.iters):
        order = kinds[i % 3:] + kinds[:i % 3]
        for kind in order:
            times[kind].append(
                timed_step(runs[kind], i + 1, batches[i % len(batches)],
                           args.device))
    base_mean = statistics.mean(times['off'])
    print(f'\n{name}: {args.iters} iterations per variant (round-robin), '
          f'{args.device}, clip_grad {clip_grad}')
    print(f'{"checks":<8} {"mean s/iter":>12} {"median":>8} {"ratio":>7}')
    for kind in kinds:
        mean = statistics.mean(times[kind])
        print(f'{kind:<8} {mean:12.4f} {statistics.median(times[kind]):8.4f}'
              f' {mean / base_mean:7.3f}')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--tasks', nargs='+', default=['yolo', 'audio', 'resnet'])
    parser.add_argument('--iters', type=int, default=150)
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args()
    # Training one fixed pool of batches drives gradients tiny; denormals
    # are slow on the CPU and would dominate.
    torch.set_flush_denormal(True)
    print(f'{platform.node()} {platform.processor() or platform.machine()}, '
          f'{os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, '
          f'torch {torch.__version__}, mmengine {mmengine.__version__}, '
          f'python {platform.python_version()}')
    for name in args.tasks:
        bench(name, args)


if __name__ == '__main__':
    main()
