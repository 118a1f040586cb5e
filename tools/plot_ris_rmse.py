"""Draw RMSE curves of the RIS DoA network, MUSIC and sqrt(CRB).

Two inputs:

* the output of ``benchmarks/bench_ris_rmse.py`` (``cells``): three
  panels, RMSE vs SNR (uncorrelated sources, the config's T), RMSE vs T at
  one SNR (``--snr``), and RMSE vs SNR for correlated / coherent sources,
  with 95% bootstrap intervals on the network and MUSIC;
* a JSON file holding ``RISDoAMetric`` keys (``ris/rmse_network@-10dB``
  ...): a plain dict, ``metrics`` of an older benchmark file, or
  mmengine's ``vis_data/scalars.json`` (JSON lines; the last line with
  RMSE keys is used): one panel, RMSE vs SNR.

Example:
    python tools/plot_ris_rmse.py work_dirs/bench_ris/rmse.json \
        --out rmse.png
"""
import argparse
import json
import os.path as osp
import re
import sys
from typing import Dict, List, Optional

import matplotlib

matplotlib.use('Agg')  # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402

# From a clone, use the clone's package even if another copy is installed.
_REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
if osp.isdir(osp.join(_REPO, 'engine_plugins')):
    sys.path.insert(0, _REPO)
from engine_plugins.evaluation.ris import COLUMN_LABELS  # noqa: E402

KEY = re.compile(
    r'rmse_(network|network_raw|music|music_fbss|dml|classical_switch|'
    r'fit_oracle|sqrt_crb)'
    r'@(-?[0-9.]+)dB$')
LABELS = {
    c: COLUMN_LABELS[c]
    for c in ('network', 'network_raw', 'music', 'music_fbss', 'dml',
              'classical_switch', 'fit_oracle', 'sqrt_crb')
}
STYLES = dict(
    network='o-', network_raw='x:', music='s--', music_fbss='^-.',
    dml='d-.', classical_switch='v:', fit_oracle='k--', sqrt_crb='k:')
WITH_INTERVAL = ('network', 'music')


def load_curves(path: str) -> Dict[str, Dict[float, float]]:
    """``{column: {snr: rmse}}`` from a results file.

    Raises:
        ValueError: the file has no RMSE-per-SNR keys (names the file).
    """
    with open(path) as f:
        text = f.read()
    try:
        records = [json.loads(text)]
    except json.JSONDecodeError:
        try:
            records = [json.loads(line) for line in text.splitlines()
                       if line.strip()]
        except json.JSONDecodeError as exc:
            raise ValueError(f'{path} is neither JSON nor JSON lines: '
                             f'{exc}') from exc
    curves: Dict[str, Dict[float, float]] = {}
    for record in records:
        metrics = record.get('metrics', record)
        found = {}
        for key, value in metrics.items():
            match = KEY.search(key)
            if match:
                found.setdefault(match[1], {})[float(match[2])] = value
        if found:
            curves = found  # keep the last record that has RMSE keys
    if not curves:
        raise ValueError(
            f'{path} has no RMSE-per-SNR keys such as '
            "'ris/rmse_network@0dB'; expected RISDoAMetric results")
    return curves


def plot(curves: Dict[str, Dict[float, float]],
         out: str,
         title: Optional[str] = None) -> None:
    """Semilog-y RMSE (degrees) vs SNR (dB), one line per column."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for name in LABELS:
        if name not in curves:
            continue
        snrs = sorted(curves[name])
        ax.semilogy(snrs, [curves[name][s] for s in snrs], STYLES[name],
                    label=LABELS[name])
    ax.set_xlabel('SNR (dB)')
    ax.set_ylabel('RMSE (degrees)')
    ax.grid(True, which='both', alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def _draw(ax, cells: List[dict], x_key: str, columns: List[str]) -> None:
    """One line per column over ``x_key``, intervals where known."""
    cells = sorted(cells, key=lambda c: c[x_key])
    xs = [c[x_key] for c in cells]
    for name in columns:
        if f'rmse_{name}' not in cells[0]:
            continue
        ys = [c[f'rmse_{name}'] for c in cells]
        if name in WITH_INTERVAL and f'ci_{name}' in cells[0]:
            err = [[y - c[f'ci_{name}'][0] for y, c in zip(ys, cells)],
                   [c[f'ci_{name}'][1] - y for y, c in zip(ys, cells)]]
            ax.errorbar(xs, ys, yerr=err, fmt=STYLES[name], capsize=3,
                        label=LABELS[name])
        else:
            ax.plot(xs, ys, STYLES[name], label=LABELS[name])
    ax.set_yscale('log')
    ax.grid(True, which='both', alpha=0.3)


def plot_bench(result: dict, out: str, snr: float = 0.0,
               title: Optional[str] = None) -> None:
    """The benchmark's three panels (see the module docstring)."""
    cells = result['cells']
    columns = [c for c in LABELS if c in result.get('columns', LABELS)]
    base = [c for c in cells if c['regime'] == 'snr']
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    _draw(axes[0], base, 'snr', columns)
    axes[0].set(xlabel='SNR (dB)', ylabel='RMSE (degrees)',
                title=f'uncorrelated, T = {base[0]["num_snapshots"]}')
    by_t = [c for c in cells
            if c['regime'] in ('snr', 'snapshots') and c['snr'] == snr]
    if by_t:
        _draw(axes[1], by_t, 'num_snapshots', columns)
        axes[1].set_xscale('log', base=2)
    axes[1].set(xlabel='snapshots T', ylabel='RMSE (degrees)',
                title=f'uncorrelated, {snr:g} dB')
    coherent = [c for c in cells if c['regime'] == 'correlation']
    if coherent:
        strongest = max(c['correlation'] for c in coherent)
        _draw(axes[2], [c for c in coherent if c['correlation'] == strongest],
              'snr', columns)
        axes[2].set_title(f'correlation {strongest:g}, '
                          f'T = {coherent[0]["num_snapshots"]}')
    axes[2].set(xlabel='SNR (dB)', ylabel='RMSE (degrees)')
    axes[0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description='Plot RIS DoA RMSE curves')
    parser.add_argument('results', help='benchmark JSON, or JSON with '
                        'RISDoAMetric keys')
    parser.add_argument('--out', default='rmse_vs_snr.png')
    parser.add_argument('--snr', type=float, default=0.0,
                        help='SNR (dB) of the RMSE-vs-T panel')
    parser.add_argument('--title', default=None)
    args = parser.parse_args(argv)
    try:
        with open(args.results) as f:
            result = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError):
        result = None
    if isinstance(result, dict) and 'cells' in result:
        plot_bench(result, args.out, args.snr, args.title)
    else:
        plot(load_curves(args.results), args.out, args.title)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
