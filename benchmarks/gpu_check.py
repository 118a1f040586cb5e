"""A short run of every GPU-bound part of the project on one GPU, as one
table.

Steps, each in its own process with its own timeout, so that an
exception, a CUDA out-of-memory error or a hang in one is reported as a
FAIL row and the others still run:

* ``yolo_train``, ``rtdetr_train``: 50 iterations of
  ``configs/psalm_yolo_h100.py`` and
  ``configs/rtdetr/rtdetr_r50_1920x1080_h100.py`` through mmengine's
  Runner, at their batch sizes (64, 16) and fp16 AMP, on generated shapes
  images relabelled over COCO's 80 classes (640 px and 1920x1080).
  Validation and checkpoints are off, and the R50 backbone starts from
  random weights (there is no download). Reported: iterations/s after the
  first 5, peak CUDA memory, whether every loss was finite, and the sanity
  engine's verdict on the run (as ``tools/diagnose.py`` gives it).
* ``bench_tal``, ``bench_matching``: ``benchmarks/bench_tal.py`` and
  ``benchmarks/bench_matching.py`` as they are, with their output lines.
* ``msda_fp16``: mmcv's compiled multi-scale deformable attention against its
  PyTorch path in fp16 at RT-DETR's shapes (batch 16, the 3 levels of a
  1920x1088 input at strides 8/16/32, 8 heads, 4 points, 300 queries,
  d=256), both against an fp32 reference: max abs differences and times.
* ``audio_3b_step``: one optimizer step (its ``accumulative_counts``
  micro-batches) of ``configs/audio/dualffn_3b_lora_bf16.py`` on the demo
  manifest.
* ``ris_fp16``: 50 iterations of ``configs/ris/ris_upa12x12_h100.py`` with
  fp16 AMP and a dynamic loss scale (the config uses bf16).

``--dry-run`` runs the same steps and code paths small: batch 2, 3
iterations, 128 px images, AMP as bf16 autocast on CPU, the tiny audio
model, the deformable attention at small shapes, the benchmarks with
``--repeats 1`` and their smallest case::

    bash benchmarks/gpu_check.sh [--device cuda|cpu] [--dry-run]
        [--out work_dirs/gpu_check/gpu_check.json] [--budget 450]

The table goes to stdout (progress to stderr), the rows to ``--out`` as
JSON, each step's log to ``<out folder>/logs/``. Exit code: 0 when no step
failed, 1 otherwise, 2 for a device that cannot run the check.
"""
import argparse
import json
import math
import os
import os.path as osp
import random
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)  # the clone's package, not an installed copy

import torch  # noqa: E402
from mmengine.hooks import Hook  # noqa: E402

WARMUP_ITERS = 5
DEFAULT_BUDGET_S = 450


@dataclass(frozen=True)
class Step:
    """One row of the check: a worker of this file, or a benchmark script
    run with ``--device`` (and in a dry run with each of ``dry_args`` that
    its ``--help`` lists). ``timeout`` is for the GPU run, ``dry_timeout``
    for the dry run."""
    name: str
    setting: str
    timeout: int
    dry_timeout: int
    script: Optional[str] = None
    dry_args: Tuple[Tuple[str, str], ...] = ()


STEPS = (
    Step('yolo_train', 'psalm_yolo_h100.py', 110, 150),
    Step('rtdetr_train', 'rtdetr_r50_1920x1080_h100.py', 140, 150),
    Step('bench_tal', 'bench_tal.py', 75, 90, 'benchmarks/bench_tal.py',
         (('--repeats', '1'), ('--gts', '5'), ('--batches', '2'))),
    Step('bench_matching', 'bench_matching.py', 75, 90,
         'benchmarks/bench_matching.py',
         (('--repeats', '1'), ('--gts', '10'))),
    Step('msda_fp16', 'MultiScaleDeformableAttnFunction', 40, 60),
    Step('audio_3b_step', 'dualffn_3b_lora_bf16.py', 180, 120),
    Step('ris_fp16', 'ris_upa12x12_h100.py', 70, 90),
)
MIN_STEP_S = 20  # a step given less than this by the budget is not started


# -- workers (each runs in its own process) ---------------------------------
class IterTimes(Hook):
    """Records when each training iteration ends (after the device has
    finished it) and whether its losses were finite, and writes the
    iteration count to ``progress`` so a timed-out step can say how far it
    got."""

    priority = 'LOWEST'  # after every other hook of the iteration

    def __init__(self, progress: str) -> None:
        self.progress = progress
        self.starts: List[float] = []
        self.ends: List[float] = []
        self.nonfinite: Dict[str, int] = {}

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        self.starts.append(time.perf_counter())

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None) -> None:
        for key, value in (outputs or {}).items():
            if 'loss' in key and not math.isfinite(float(value)):
                self.nonfinite.setdefault(key, runner.iter + 1)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.ends.append(time.perf_counter())
        _write_json(self.progress, dict(stage='training', iter=len(self.ends)))

    def rate(self) -> Optional[float]:
        """Iterations/s after the first ``min(5, n // 2)``."""
        warm = min(WARMUP_ITERS, len(self.ends) // 2)
        if warm < 1 or len(self.ends) <= warm:
            return None
        return (len(self.ends) - warm) / (self.ends[-1] - self.ends[warm - 1])

    def data_wait(self) -> float:
        """Share of the timed span spent between iterations (the data
        loader, mostly)."""
        warm = min(WARMUP_ITERS, len(self.ends) // 2)
        if warm < 1 or len(self.ends) <= warm:
            return 0.0
        gaps = [
            s - e for s, e in zip(self.starts[warm:], self.ends[warm - 1:])
        ]
        return sum(gaps) / (self.ends[-1] - self.ends[warm - 1])


def _write_json(path: str, obj) -> None:
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)


def _peak_memory(device: str) -> dict:
    if device == 'cuda':
        return dict(
            peak_gib=torch.cuda.max_memory_allocated() / 2**30,
            reserved_gib=torch.cuda.max_memory_reserved() / 2**30,
            mem_kind='CUDA allocated')
    return dict(
        peak_gib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        mem_kind='process RSS')


def _short_run(cfg, batch: int, dry: bool, notes: List[str]) -> None:
    """Training only (validation, testing and checkpoints off) at ``batch``;
    in a dry run at most 2 data workers and fp16 AMP as bf16 (fp16 autocast
    and GradScaler need CUDA)."""
    for split in ('val', 'test'):
        for part in ('dataloader', 'cfg', 'evaluator'):
            cfg[f'{split}_{part}'] = None
    cfg.default_hooks.checkpoint = None
    loader = cfg.train_dataloader
    loader.batch_size = batch
    if dry:
        loader.num_workers = min(loader.get('num_workers', 0), 2)
        loader.persistent_workers = loader.num_workers > 0 and \
            loader.get('persistent_workers', False)
        if cfg.optim_wrapper.get('dtype') == 'float16':
            cfg.optim_wrapper.dtype = 'bfloat16'
            notes.append('fp16 AMP as bf16 autocast on CPU, no GradScaler')


def _sanity(work_dir: str, expected: Tuple[str, ...], row: dict,
            notes: List[str]) -> bool:
    """Put the sanity engine's diagnosis of the run in ``row``: its verdict,
    with the first finding's evidence. Returns whether the run is healthy
    apart from warnings whose cause is in ``expected``."""
    from engine_plugins.diagnosis import diagnose, load_run
    try:
        diag = diagnose(load_run(work_dir))
    except Exception as exc:  # no run files: training never started
        row['verdict'] = f'sanity: no diagnosis ({_one_line(exc)})'
        return False
    row['sanity_findings'] = [
        dict(cause=c.cause, severity=c.severity, iter=c.first_iter,
             evidence=c.evidence[0] if c.evidence else '')
        for c in diag.causes
    ]
    other = [
        c for c in diag.causes
        if not (c.severity == 'warning' and c.cause in expected)
    ]
    shown = other[0] if other else (diag.causes or [None])[0]
    if shown is None:
        row['verdict'] = 'sanity: healthy'
    else:
        evidence = shown.evidence[0][:160] if shown.evidence else ''
        row['verdict'] = (
            'sanity: healthy but for the expected ' if not other else
            f'sanity: {shown.severity} ') + f'[{shown.cause}] {evidence}'
    skipped = diag.summary.get('skipped_steps', 0)
    scale = diag.contract.get('loss_scale')
    if skipped:
        notes.append(f'{skipped} skipped steps')
    if scale:
        notes.append(f"loss scale {scale['first']:g} -> {scale['last']:g}")
    return not other


def _train(cfg,
           device: str,
           expected_iters: int,
           batch: int,
           progress: str,
           expected: Tuple[str, ...] = ()) -> dict:
    """Train ``cfg`` and return the row: rate, memory, finite losses, and
    the sanity engine's diagnosis of the run, also when training raised.
    Warnings whose cause is in ``expected`` leave the row a PASS."""
    from engine_plugins.utils.config_loading import build_runner
    _write_json(progress, dict(stage='building the runner'))
    timer = IterTimes(progress)
    error = None
    try:
        runner = build_runner(cfg)
        runner.register_hook(timer)
        if device == 'cuda':
            torch.cuda.reset_peak_memory_stats()
        runner.train()
    except Exception as exc:  # reported with the diagnosis below
        traceback.print_exc()
        error = exc
    row = dict(iterations=len(timer.ends), **_peak_memory(device))
    rate = timer.rate()
    notes = []
    if rate is not None:
        row['it_s'] = rate
        notes.append(f'{rate * batch:.3g} samples/s, data wait '
                     f'{100 * timer.data_wait():.0f}%')
    row['finite'] = not timer.nonfinite if timer.ends else None
    if timer.nonfinite:
        notes.append('non-finite: ' + ', '.join(
            f'{k} at {i}' for k, i in timer.nonfinite.items()))
    healthy = _sanity(cfg.work_dir, expected, row, notes)
    row['notes'] = notes
    if error is not None:
        row.update(status='FAIL', reason=_one_line(error))
    elif len(timer.ends) != expected_iters or timer.nonfinite:
        row.update(
            status='FAIL',
            reason=f'{len(timer.ends)} of {expected_iters} iterations'
            if len(timer.ends) != expected_iters else 'non-finite losses')
    else:
        row['status'] = 'PASS' if healthy else 'WARN'
    return row


def _coco80_shapes(root: str, num: int, size_hw) -> str:
    """Shapes images of ``size_hw`` with their boxes relabelled at random
    over COCO's 80 classes, so the configs train with their own class
    count; returns the annotation file, relative to ``root``."""
    from mmdet.datasets import CocoDataset

    from engine_plugins.datasets import write_demo_shapes
    write_demo_shapes(
        root, num_train=num, num_val=0, min_size=size_hw, max_size=size_hw)
    with open(osp.join(root, 'annotations', 'train.json')) as f:
        coco = json.load(f)
    coco['categories'] = [
        dict(id=i + 1, name=name)
        for i, name in enumerate(CocoDataset.METAINFO['classes'])
    ]
    rng = random.Random(0)
    for ann in coco['annotations']:
        ann['category_id'] = rng.randint(1, len(coco['categories']))
    ann_file = 'annotations/train_coco80.json'
    _write_json(osp.join(root, ann_file), coco)
    return ann_file


def _detection(args, config: str, size_hw, num_images: int) -> dict:
    from engine_plugins.utils.config_loading import load_config
    dry = args.dry_run
    iters = 3 if dry else 50
    cfg = load_config(osp.join(REPO, config), work_dir=args.work_dir)
    batch = 2 if dry else cfg.train_dataloader.batch_size
    num_images = 2 if dry else num_images
    if dry:
        size_hw = (128 * size_hw[0] // size_hw[1], 128)
    if iters * batch % num_images:
        raise ValueError(f'{num_images} images do not divide {iters} '
                         f'iterations of batch {batch}')
    h, w = size_hw
    root = osp.join(args.data_dir, f'shapes_{h}x{w}_{num_images}') + '/'
    _write_json(args.progress, dict(stage='writing data'))
    ann_file = _coco80_shapes(root, num_images, size_hw)
    notes = [f'{num_images} generated {w}x{h} images, 80 classes']
    _short_run(cfg, batch, dry, notes)
    loader = cfg.train_dataloader
    loader.dataset.update(
        data_root=root, ann_file=ann_file, data_prefix=dict(img='train/'))
    # One epoch of exactly `iters` batches keeps the config's epoch loop
    # and schedules.
    loader.dataset = dict(
        type='FirstSamplesDataset',
        dataset=loader.dataset,
        num_samples=num_images,
        times=iters * batch // num_images)
    loader.pop('batch_sampler', None)  # one aspect ratio: nothing to group
    cfg.train_cfg.max_epochs = 1
    for hook in cfg.get('custom_hooks', []):
        if hook['type'] == 'CloseMosaicHook':
            # Its last epochs would be this run's only one.
            hook['num_last_epochs'] = 0
            notes.append('mosaic on (CloseMosaicHook num_last_epochs=0)')
    backbone = cfg.model.get('backbone', {})
    if backbone.get('init_cfg'):
        backbone.init_cfg = None
        notes.append('backbone from random weights (no download)')
    if dry:
        for transform in loader.dataset.dataset.pipeline:
            if transform['type'] == 'Resize':
                sw, sh = transform['scale']
                transform['scale'] = (256, 256 * sh // sw)
                notes.append(f'Resize {sw}x{sh} -> 256x{256 * sh // sw}')
    amp = cfg.optim_wrapper.get('dtype', 'fp32')
    row = _train(cfg, args.device, iters, batch, args.progress)
    row['setting'] = (f'{osp.basename(config)}, batch {batch}, {iters} '
                      f'iters, {amp}')
    row['notes'] = notes + row['notes']
    return row


def work_yolo(args) -> dict:
    return _detection(args, 'configs/psalm_yolo_h100.py', (640, 640), 64)


def work_rtdetr(args) -> dict:
    return _detection(args, 'configs/rtdetr/rtdetr_r50_1920x1080_h100.py',
                      (1080, 1920), 16)


def work_audio(args) -> dict:
    from engine_plugins.datasets.audio.demo_data import make_audio_demo_data
    from engine_plugins.utils.config_loading import load_config
    _write_json(args.progress, dict(stage='writing data'))
    manifest = make_audio_demo_data(osp.join(args.data_dir, 'audio_demo'))
    cfg = load_config(
        osp.join(REPO, 'configs/audio/dualffn_3b_lora_bf16.py'),
        work_dir=args.work_dir)
    notes = []
    batch = cfg.train_dataloader.batch_size
    _short_run(cfg, batch, args.dry_run, notes)
    cfg.train_dataloader.dataset.manifest = manifest
    # One optimizer step is `counts` micro-batches (the sanity engine
    # refuses a run shorter than that).
    iters = counts = cfg.optim_wrapper.get('accumulative_counts', 1)
    cfg.train_cfg.max_iters = iters
    if args.dry_run:
        notes.append(f"size 'tiny' instead of '{cfg.model.size}' on CPU")
        cfg.model.size = 'tiny'
    # The sanity engine warns that a run this short makes few optimizer
    # steps: here that is the point.
    row = _train(cfg, args.device, iters, batch, args.progress,
                 expected=('no_update', ))
    row['setting'] = (f'dualffn_3b_lora_bf16.py ({cfg.model.size}), batch '
                      f'{batch}, {iters} micro-batches (accumulation '
                      f'{counts}), {cfg.optim_wrapper.dtype}')
    row['notes'] = notes + row['notes']
    return row


def work_ris(args) -> dict:
    from engine_plugins.utils.config_loading import load_config
    cfg = load_config(
        osp.join(REPO, 'configs/ris/ris_upa12x12_h100.py'),
        work_dir=args.work_dir)
    notes = []
    configured = cfg.optim_wrapper.get('dtype')
    if configured != 'float16' and args.dry_run:
        notes.append(f'{configured} AMP as configured on CPU (the GPU run '
                     'overrides it to fp16 + GradScaler)')
    elif configured != 'float16':
        # AmpGradSanityOptimWrapper is mmengine's AmpOptimWrapper with the
        # checks; the SanityHook refuses the plain one.
        cfg.optim_wrapper.update(
            type='AmpGradSanityOptimWrapper',
            dtype='float16',
            loss_scale='dynamic')
        notes.append(f'{configured} AMP overridden to fp16 + dynamic '
                     'GradScaler (AmpGradSanityOptimWrapper)')
    iters = 3 if args.dry_run else 50
    batch = 2 if args.dry_run else cfg.train_dataloader.batch_size
    _short_run(cfg, batch, args.dry_run, notes)
    cfg.train_cfg.max_iters = iters
    row = _train(cfg, args.device, iters, batch, args.progress)
    row['setting'] = (f'ris_upa12x12_h100.py, batch {batch}, {iters} iters, '
                      f'{cfg.optim_wrapper.dtype}')
    row['notes'] = notes + row['notes']
    return row


def _median_time(fn, device: str, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        if device == 'cuda':
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device == 'cuda':
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def work_msda(args) -> dict:
    """Compiled deformable attention against the PyTorch path, both against
    a reference in higher precision. On CPU, mmcv has no compiled kernel:
    the PyTorch path in fp32 is compared with itself in float64."""
    from mmcv.ops.multi_scale_deform_attn import (
        MultiScaleDeformableAttnFunction, multi_scale_deformable_attn_pytorch)
    device, dry = args.device, args.dry_run
    # RT-DETR at 1920x1088: strides 8/16/32; a dry run shrinks every size.
    bs, queries, size = (2, 20, (64, 128)) if dry else (16, 300, (1088, 1920))
    heads, points, dims = 8, 4, 256
    shapes = torch.tensor([(size[0] // s, size[1] // s) for s in (8, 16, 32)],
                          device=device)
    starts = torch.cat((shapes.new_zeros(1), shapes.prod(1).cumsum(0)[:-1]))
    gen = torch.Generator(device=device).manual_seed(0)
    value = torch.randn(bs, int(shapes.prod(1).sum()), heads, dims // heads,
                        generator=gen, device=device)
    # Some points fall outside the map, where both sample zeros.
    locations = torch.rand(bs, queries, heads, 3, points, 2, generator=gen,
                           device=device) * 1.1 - 0.05
    weights = torch.rand(bs, queries, heads, 3 * points, generator=gen,
                         device=device).softmax(-1).view(
                             bs, queries, heads, 3, points)
    dtype = torch.float32 if device == 'cpu' else torch.float16
    ref_dtype = torch.float64 if device == 'cpu' else torch.float32
    tol = 1e-4 if dtype == torch.float32 else 1e-2
    cast = [t.to(dtype) for t in (value, locations, weights)]
    high = [t.to(ref_dtype) for t in (value, locations, weights)]
    ref = multi_scale_deformable_attn_pytorch(high[0], shapes, high[1],
                                              high[2]).float()
    impls = dict(
        pytorch=lambda: multi_scale_deformable_attn_pytorch(
            cast[0], shapes, cast[1], cast[2]),
        kernel=lambda: MultiScaleDeformableAttnFunction.apply(
            cast[0], shapes, starts, cast[1], cast[2], 64))
    name = str(dtype).replace('torch.', '')
    notes, diffs, row = [], {}, {}
    outs = {}
    with torch.no_grad():
        for impl, fn in impls.items():
            try:
                outs[impl] = fn().float()
            except RuntimeError as exc:
                if device != 'cpu':
                    raise
                notes.append(f'compiled op: {_one_line(exc)}')
                continue
            diffs[f'{impl}_vs_ref'] = float((outs[impl] - ref).abs().max())
            row[f'{impl}_ms'] = 1e3 * _median_time(fn, device,
                                                   3 if dry else 20)
        if len(outs) == 2:
            diffs['kernel_vs_pytorch'] = float(
                (outs['kernel'] - outs['pytorch']).abs().max())
    row.update(diffs, **_peak_memory(device))
    row['max_abs_diff'] = max(diffs.values())
    ref_name = str(ref_dtype).replace('torch.', '')
    notes.insert(0, ', '.join(f'max|{k}| {v:.2e}' for k, v in diffs.items())
                 + f' (ref: PyTorch path in {ref_name}; tolerance {tol:g})')
    notes.append(', '.join(f'{k} {row[k + "_ms"]:.2f} ms'
                           for k in impls if k + '_ms' in row))
    row.update(
        setting=f'{name}, batch {bs}, {queries} queries, levels '
        f'{"/".join(f"{h}x{w}" for h, w in shapes.tolist())}, 8 heads, '
        f'4 points, d 256',
        notes=notes,
        outputs_finite=all(
            torch.isfinite(o).all().item() for o in outs.values()))
    if row['max_abs_diff'] > tol or not row['outputs_finite']:
        row.update(
            status='FAIL',
            reason=f'max abs difference {row["max_abs_diff"]:.3g} above '
            f'{tol:g}')
    else:
        row['status'] = 'PASS'
    return row


def work_info(args) -> dict:
    """The machine, threads and versions."""
    import importlib.metadata as metadata

    import mmcv.ops
    info = dict(
        cpus=os.cpu_count(),
        omp_num_threads=os.environ.get('OMP_NUM_THREADS', 'unset'),
        torch_threads=torch.get_num_threads(),
        versions={
            p: metadata.version(p)
            for p in ('torch', 'mmengine', 'mmcv', 'mmdet')
        },
        mmcv_ops_cuda=mmcv.ops.get_compiling_cuda_version(),
        status='PASS')
    from engine_plugins.version import __version__
    info['versions']['engine_plugins'] = __version__
    if args.device == 'cuda':
        props = torch.cuda.get_device_properties(0)
        try:  # the newest CUDA version the installed driver supports
            driver = torch._C._cuda_getDriverVersion()
            driver = f'{driver // 1000}.{driver % 1000 // 10}'
        except (AttributeError, RuntimeError):
            driver = 'unknown'
        info.update(
            gpu=props.name,
            capability=f'sm_{props.major}{props.minor}',
            gpu_memory_gib=props.total_memory / 2**30,
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
            driver_cuda=driver)
    return info


WORKERS = dict(
    info=work_info,
    yolo_train=work_yolo,
    rtdetr_train=work_rtdetr,
    msda_fp16=work_msda,
    audio_3b_step=work_audio,
    ris_fp16=work_ris)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f'{type(exc).__name__}: {text[0][:240] if text else ""}'


def run_worker(args) -> int:
    try:
        row = WORKERS[args.worker](args)
    except Exception as exc:
        traceback.print_exc()
        row = dict(status='FAIL', reason=_one_line(exc))
    _write_json(args.result, row)
    return 0 if row.get('status') != 'FAIL' else 1


# -- the check ---------------------------------------------------------------
class Interrupted(Exception):
    """SIGTERM or SIGINT: stop, and still print what ran."""


def _interrupt(signum, frame):
    raise Interrupted(signal.Signals(signum).name)


def _run(cmd: List[str], log: str, timeout: float,
         stdout: Optional[str] = None) -> Optional[int]:
    """Run ``cmd`` in its own process group, stderr to ``log`` and stdout
    to ``stdout`` (default: ``log`` too); the exit code, or None after
    ``timeout`` s. The whole group (data-loader workers included) is killed
    on a timeout or an interruption."""
    with open(log, 'w') as err, open(stdout or os.devnull, 'w') as out:
        proc = subprocess.Popen(
            cmd, cwd=REPO, stdout=out if stdout else err, stderr=err,
            start_new_session=True)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        finally:
            if proc.returncode is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _log_tail(*logs: Optional[str]) -> str:
    """The last line of the first of ``logs`` with any output."""
    for log in filter(None, logs):
        with open(log, errors='replace') as f:
            lines = [line.strip() for line in f if line.strip()]
        if lines:
            return lines[-1][:240]
    return 'no output'


def _read(path: str) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def _bench_cmd(step: Step, args) -> List[str]:
    cmd = [sys.executable, osp.join(REPO, step.script), '--device',
           args.device]
    if args.dry_run:
        # The script may change under us: pass only the options it lists.
        usage = subprocess.run(
            cmd[:2] + ['--help'], cwd=REPO, capture_output=True, text=True,
            timeout=60).stdout
        for option, value in step.dry_args:
            if option in usage:
                cmd += [option, value]
    return cmd


def run_step(step: Step, args, out_dir: str, timeout: float) -> dict:
    """One step in its own process; its row, FAIL with a one-line reason
    when it raised, died or timed out."""
    log = osp.join(out_dir, 'logs', f'{step.name}.log')
    result = osp.join(out_dir, 'results', f'{step.name}.json')
    progress = osp.join(out_dir, 'results', f'{step.name}.progress.json')
    work_dir = osp.join(out_dir, 'runs', step.name)
    shutil.rmtree(work_dir, ignore_errors=True)  # diagnose this run only
    for path in (result, progress):
        if osp.exists(path):
            os.remove(path)
    if step.script:
        try:
            cmd = _bench_cmd(step, args)
        except (OSError, subprocess.SubprocessError) as exc:
            return dict(setting=step.setting, status='FAIL',
                        reason=f'--help: {_one_line(exc)}')
    else:
        cmd = [
            sys.executable, osp.abspath(__file__), '--worker', step.name,
            '--device', args.device, '--result', result, '--progress',
            progress, '--work-dir', work_dir, '--data-dir',
            osp.join(out_dir, 'data')
        ] + (['--dry-run'] if args.dry_run else [])
    stdout = osp.join(out_dir, 'logs', f'{step.name}.out') \
        if step.script else None
    code = _run(cmd, log, timeout, stdout)
    row = _read(result)
    row.setdefault('setting', step.setting)
    if step.script:
        with open(stdout, errors='replace') as f:
            lines = [line.rstrip() for line in f if line.strip()]
        row.update(
            setting=' '.join(cmd[2:]),
            output=lines,
            status='PASS' if code == 0 else 'FAIL')
        if code:
            row['reason'] = f'exit code {code}: {_log_tail(log, stdout)}'
    if code is None:
        got = _read(progress)
        where = f" while {got['stage']}" if got.get('stage') else ''
        if 'iter' in got:
            where += f" (iteration {got['iter']})"
        row.update(
            status='FAIL', reason=f'timed out after {timeout:.0f} s{where}')
    elif not row.get('status'):
        row.update(
            status='FAIL',
            reason=f'exit code {code}, no result: {_log_tail(log)}')
    row['log'] = osp.relpath(log, out_dir)
    return row


def _cell(text) -> str:
    return str(text).replace('|', '\\|').replace('\n', ' ')


def format_table(rows: List[dict]) -> str:
    lines = [
        '| step | setting | it/s | peak memory | finite losses | time s | '
        'verdict / notes |', '| --- | --- | --- | --- | --- | --- | --- |'
    ]
    for row in rows:
        mem = row.get('peak_gib')
        mem = '—' if mem is None else f'{mem:.2f} GiB' + (
            ' RSS' if row.get('mem_kind') == 'process RSS' else '')
        finite = {True: 'yes', False: 'no'}.get(row.get('finite'), '—')
        rate = f"{row['it_s']:.2f}" if row.get('it_s') else '—'
        verdict = [row['status'] + (f": {row['reason']}"
                                    if row.get('reason') else '')]
        verdict += [row['verdict']] if row.get('verdict') else []
        verdict += row.get('notes', [])
        elapsed = f"{row['elapsed_s']:.0f}" if 'elapsed_s' in row else '—'
        lines.append('| ' + ' | '.join(
            _cell(c) for c in (row['step'], row['setting'], rate, mem, finite,
                               elapsed, '; '.join(verdict))) + ' |')
        for out in row.get('output', []):
            lines.append(f'| | output | | | | | `{_cell(out)}` |')
    return '\n'.join(lines)


def format_machine(info: dict, device: str) -> List[str]:
    if not info.get('versions'):
        return [f'machine: unknown ({info.get("reason", "no info")})']
    lines = []
    if device == 'cuda' and info.get('gpu'):
        lines.append(
            f"GPU: {info['gpu']} ({info['capability']}, "
            f"{info['gpu_memory_gib']:.0f} GiB); CUDA {info['cuda']} "
            f"(cuDNN {info['cudnn']}); driver supports CUDA "
            f"{info['driver_cuda']}")
    else:
        lines.append(f'device: {device} (no GPU used)')
    lines.append(f"threads: OMP_NUM_THREADS={info['omp_num_threads']}, "
                 f"torch {info['torch_threads']}, {info['cpus']} CPUs")
    lines.append('versions: ' + ', '.join(
        f'{k} {v}' for k, v in info['versions'].items()) +
        f"; mmcv ops compiled with CUDA: {info['mmcv_ops_cuda']}")
    return lines


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='cuda', choices=['cuda', 'cpu'])
    parser.add_argument(
        '--dry-run',
        action='store_true',
        help='the same steps, small: batch 2, 3 iterations, small shapes '
        '(the only mode on CPU)')
    parser.add_argument(
        '--out',
        default=osp.join(REPO, 'work_dirs', 'gpu_check', 'gpu_check.json'),
        help='JSON results; logs, data and runs go to its folder')
    parser.add_argument(
        '--budget',
        type=float,
        default=DEFAULT_BUDGET_S,
        help='seconds for the whole check; steps the budget no longer '
        'covers are not started')
    for hidden in ('--worker', '--result', '--progress', '--work-dir',
                   '--data-dir'):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _device_problem(args) -> Optional[str]:
    if args.device == 'cpu' and not args.dry_run:
        return ('the full check needs CUDA (--device cuda); on CPU only '
                '--device cpu --dry-run runs')
    if args.device == 'cuda' and not torch.cuda.is_available():
        why = (f'torch {torch.__version__} is built without CUDA'
               if torch.version.cuda is None else 'no GPU is visible')
        return (f'--device cuda, but CUDA is not available ({why}); run it '
                'on a GPU machine, or use --device cpu --dry-run')
    return None


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        return run_worker(args)
    problem = _device_problem(args)
    if problem:
        print(f'gpu_check: {problem}', file=sys.stderr)
        return 2
    start = time.monotonic()
    out = osp.abspath(args.out)
    out_dir = osp.dirname(out)
    for sub in ('logs', 'results'):
        os.makedirs(osp.join(out_dir, sub), exist_ok=True)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    rows, info = [], {}
    steps = list(STEPS)
    running, began = None, start
    try:
        info = run_step(
            Step('info', '', 120, 120), args, out_dir, 120)
        for i, step in enumerate(steps):
            limit = step.dry_timeout if args.dry_run else step.timeout
            left = args.budget - (time.monotonic() - start)
            # Leave every later step its minimum, so one hang cannot starve
            # the rest.
            timeout = min(limit, left - MIN_STEP_S * (len(steps) - i - 1))
            if timeout < MIN_STEP_S:  # too little left to reserve any
                timeout = min(limit, left)
            if timeout < MIN_STEP_S:
                rows.append(
                    dict(step=step.name, setting=step.setting,
                         status='FAIL', reason=f'not run: the budget of '
                         f'{args.budget:.0f} s was spent'))
                continue
            print(f'[{i + 1}/{len(steps)}] {step.name} (limit '
                  f'{timeout:.0f} s) ...', file=sys.stderr, flush=True)
            running, began = step.name, time.monotonic()
            row = dict(step=step.name, **run_step(step, args, out_dir,
                                                  timeout))
            row['elapsed_s'] = time.monotonic() - began
            rows.append(row)
            print(f"    {row['status']} in {row['elapsed_s']:.0f} s"
                  + (f": {row['reason']}" if row.get('reason') else ''),
                  file=sys.stderr, flush=True)
    except Interrupted as exc:
        done = {r['step'] for r in rows}
        for step in steps:
            if step.name in done:
                continue
            row = dict(step=step.name, setting=step.setting, status='FAIL',
                       reason=f'not run: interrupted ({exc})')
            if step.name == running:
                row.update(
                    elapsed_s=time.monotonic() - began,
                    reason=f'interrupted while running ({exc})')
            rows.append(row)
    total = time.monotonic() - start
    mode = 'dry run' if args.dry_run else 'full run'
    header = format_machine(info, args.device) + [
        f'{mode} on {args.device}, {total:.0f} s in all (budget '
        f'{args.budget:.0f} s)'
    ]
    print('\n'.join(header) + '\n\n' + format_table(rows))
    _write_json(
        out,
        dict(machine=info, device=args.device, dry_run=args.dry_run,
             budget_s=args.budget, total_s=total, rows=rows))
    print(f'\nresults: {out}; logs: {osp.join(out_dir, "logs")}',
          file=sys.stderr)
    return 1 if any(r['status'] == 'FAIL' for r in rows) else 0


if __name__ == '__main__':
    sys.exit(main())
