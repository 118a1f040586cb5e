"""The report's figures, as PNG bytes (matplotlib, no display)."""
import io
import math
from typing import Dict, List, Optional, Sequence, Tuple

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

from engine_plugins.engine.sanity.health import stat_for  # noqa: E402
from .run_files import RunFiles  # noqa: E402

Figure = Tuple[str, bytes]
# Keys of training scalars that are not curves worth a plot.
_BOOKKEEPING = {'step', 'iter', 'epoch', 'time', 'data_time', 'memory'}


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format='png', dpi=90)
    plt.close(fig)
    return buf.getvalue()


def _finite(values: Sequence[float]) -> List[float]:
    return [v for v in values if isinstance(v, (int, float))
            and math.isfinite(v)]


def _log_if_wide(ax, values: Sequence[float]) -> None:
    """Log scale where positive values span more than two decades."""
    positive = [v for v in _finite(values) if v > 0]
    if positive and len(positive) == len(_finite(values)) and \
            max(positive) / min(positive) > 100:
        ax.set_yscale('log')


def _train_records(files: RunFiles) -> List[Dict]:
    return [r for r in files.scalars if 'loss' in r]


def losses(files: RunFiles) -> Optional[Figure]:
    """Every loss term over iterations, skipped steps marked."""
    records = _train_records(files)
    if not records:
        return None
    keys = [k for k in records[-1] if 'loss' in k and '/' not in k]
    fig, ax = plt.subplots(figsize=(8, 3.6))
    xs = [r.get('iter', r.get('step')) for r in records]
    everything = []
    for key in keys[:12]:
        ys = [r.get(key, math.nan) for r in records]
        everything += ys
        ax.plot(xs, ys, label=key, lw=1.6 if key == 'loss' else 0.9)
    skipped = [s['iter'] for s in files.steps if s.get('applied') is False]
    for it in skipped[:200]:
        ax.axvline(it, color='red', alpha=0.25, lw=0.8)
    _log_if_wide(ax, everything)
    ax.set_xlabel('iteration')
    ax.set_title('loss terms' + (f' ({len(skipped)} skipped steps in red)'
                                 if skipped else ''))
    ax.legend(fontsize=7, ncol=2)
    return 'Loss terms', _png(fig)


def gradients_and_lr(files: RunFiles) -> Optional[Figure]:
    """Gradient norm per group, and the learning rate."""
    steps = [s for s in files.steps if s.get('groups')]
    records = _train_records(files)
    if not steps and not records:
        return None
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.4))
    if steps:
        xs = [s['iter'] for s in steps]
        groups = list(dict.fromkeys(g for s in steps for g in s['groups']))
        values = []
        for group in groups:
            ys = [s['groups'].get(group, math.nan) for s in steps]
            values += ys
            ax1.plot(xs, ys, label=group, lw=0.9)
        _log_if_wide(ax1, values)
        ax1.legend(fontsize=7)
        lr_x = xs
        lr_y = [s.get('lr') for s in steps]
    else:
        xs = [r.get('iter', r.get('step')) for r in records]
        ax1.plot(xs, [r.get('grad_norm', math.nan) for r in records])
        lr_x, lr_y = xs, [r.get('lr', math.nan) for r in records]
    ax1.set_title('gradient norm per group')
    ax1.set_xlabel('iteration')
    ax2.plot(lr_x, [math.nan if v is None else v for v in lr_y])
    ax2.set_title('learning rate')
    ax2.set_xlabel('iteration')
    return 'Gradient norms and learning rate', _png(fig)


def health(files: RunFiles) -> Optional[Figure]:
    """Each declared health statistic with its allowed band."""
    keys = list(
        dict.fromkeys(k for s in files.steps for k in (s.get('health') or {})))
    if not keys:
        return None
    cols = min(3, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.6 * cols, 2.4 * rows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        xs = [s['iter'] for s in files.steps if key in (s.get('health') or {})]
        ys = [s['health'][key] for s in files.steps
              if key in (s.get('health') or {})]
        ax.plot(xs, ys, lw=1)
        stat = stat_for(key)
        if stat is not None:
            values = _finite(ys) or [0.0]
            low = stat.low if math.isfinite(stat.low) else min(values)
            high = stat.high if math.isfinite(stat.high) else max(values)
            ax.axhspan(low, high, color='green', alpha=0.12)
        ax.set_title(key.replace('health/', ''), fontsize=8)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis('off')
    return 'Health statistics (allowed band in green)', _png(fig)


def gradient_flow(files: RunFiles) -> Optional[Figure]:
    """Per-module gradient norm at the first and last checked iterations."""
    flows = files.records('grad_flow')
    if not flows:
        return None
    first, last = flows[0], flows[-1]
    modules = list(first['grads'])[:40]
    fig, ax = plt.subplots(figsize=(9, 3.6))
    x = range(len(modules))
    for offset, record in ((-0.2, first), (0.2, last)):
        ys = [max(record['grads'].get(m, 0.0), 1e-12) for m in modules]
        ax.bar([i + offset for i in x],
               ys,
               width=0.4,
               label=f"iteration {record['iter']}")
    ax.set_yscale('log')
    ax.set_xticks(list(x))
    ax.set_xticklabels(modules, rotation=70, fontsize=6, ha='right')
    ax.set_title('gradient norm per module (0 shown at 1e-12)')
    ax.legend(fontsize=7)
    return 'Gradient flow', _png(fig)


def metrics(files: RunFiles) -> Optional[Figure]:
    """Validation metrics over the run (COCO mAP, RMSE, accuracy, ...)."""
    records = [r for r in files.scalars if 'loss' not in r and any(
        '/' in k and k not in _BOOKKEEPING for k in r)]
    keys = list(
        dict.fromkeys(k for r in records for k in r
                      if '/' in k and not k.startswith(('sanity/',
                                                        'health/'))))
    if not keys:
        return None
    fig, ax = plt.subplots(figsize=(8, 3.2))
    for key in keys[:8]:
        pts = [(r.get('step'), r[key]) for r in records if key in r]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker='o',
                label=key)
    ax.set_xlabel('step')
    ax.set_title('validation metrics')
    ax.legend(fontsize=7)
    return 'Validation metrics', _png(fig)


def all_figures(files: RunFiles) -> List[Figure]:
    """The figures the run's files support."""
    makers = (losses, gradients_and_lr, health, gradient_flow, metrics)
    return [f for f in (make(files) for make in makers) if f is not None]
