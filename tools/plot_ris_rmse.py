"""Draw RMSE vs SNR (network, MUSIC, sqrt(CRB)) from RISDoAMetric results.

The input is a JSON file holding the metric's keys
(``ris/rmse_network@-10dB`` ...): the output of
``benchmarks/bench_ris_rmse.py`` (keys under ``metrics``), a plain dict,
or mmengine's ``vis_data/scalars.json`` (JSON lines; the last line with
RMSE keys is used).

Example:
    python tools/plot_ris_rmse.py work_dirs/bench_ris/rmse.json \
        --out rmse_vs_snr.png
"""
import argparse
import json
import re
from typing import Dict, Optional

import matplotlib

matplotlib.use('Agg')  # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402

KEY = re.compile(r'rmse_(network|music|sqrt_crb)@(-?[0-9.]+)dB$')
LABELS = dict(
    network='network + MUSIC', music='MUSIC (sample covariance)',
    sqrt_crb='sqrt(CRB)')


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
    styles = dict(network='o-', music='s--', sqrt_crb='k:')
    for name in ('network', 'music', 'sqrt_crb'):
        if name not in curves:
            continue
        snrs = sorted(curves[name])
        ax.semilogy(snrs, [curves[name][s] for s in snrs], styles[name],
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


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description='Plot RMSE vs SNR')
    parser.add_argument('results', help='JSON with RISDoAMetric keys')
    parser.add_argument('--out', default='rmse_vs_snr.png')
    parser.add_argument('--title', default=None)
    args = parser.parse_args(argv)
    plot(load_curves(args.results), args.out, args.title)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
