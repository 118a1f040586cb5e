"""Registered DoA metric: network vs MUSIC vs sqrt(CRB), per SNR."""
import logging
from collections import defaultdict
from typing import Dict, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from engine_plugins.registry import METRICS
from engine_plugins.structures import ArrayGeometry
from .crb import crb_mse_deg2, matched_errors
from .music import MusicEstimator

COLUMNS = ('network', 'music', 'sqrt_crb')


@METRICS.register_module()
class RISDoAMetric(BaseMetric):
    """RMSE in degrees (Hungarian-matched, over sources and angle
    components) per SNR for three estimators on the same samples:
    MUSIC on the network's covariance (``network``), MUSIC on the sample
    covariance (``music``), and the stochastic CRB (``sqrt_crb``: the
    root of the mean CRB diagonal). The source count K is known.

    Also reports ``val_loss``: the relative Frobenius error of the
    network's covariance (what ``tools/hpo.py`` prunes on). Keys:
    ``rmse_<column>`` over all SNRs and ``rmse_<column>@<snr>dB``.

    Args:
        geometry: :class:`ArrayGeometry` arguments (as the dataset's).
        num_snapshots: T, for the CRB.
        az_range, el_range: MUSIC search range (degrees).
        grid_step: MUSIC grid spacing (degrees).
        decode: Run MUSIC / CRB (off: only ``val_loss``, for fast HPO).

    Example:
        >>> val_evaluator = dict(
        ...     type='RISDoAMetric', geometry=dict(rows=8, cols=8),
        ...     num_snapshots=64, grid_step=1.0)
    """

    default_prefix = 'ris'

    def __init__(self,
                 geometry: Optional[dict] = None,
                 num_snapshots: int = 64,
                 az_range: Sequence[float] = (-60.0, 60.0),
                 el_range: Sequence[float] = (-30.0, 30.0),
                 grid_step: float = 1.0,
                 decode: bool = True,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.geometry = ArrayGeometry(**(geometry or {}))
        self.num_snapshots = num_snapshots
        self.decode = decode
        self.music = MusicEstimator(self.geometry, az_range, el_range,
                                    grid_step) if decode else None

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for s in data_samples:
            missing = {'pred_cov', 'cov', 'cov_true', 'angles',
                       'num_sources', 'snr_db'} - set(s)
            if missing:
                raise KeyError(f'RISDoAMetric: prediction lacks fields '
                               f'{sorted(missing)}; got {sorted(s)}')
            true_cov = s['cov_true']
            frob = (np.abs(s['pred_cov'] - true_cov)**2).sum() / (
                np.abs(true_cov)**2).sum()
            result = dict(snr=float(s['snr_db']), frob=float(frob))
            if self.decode:
                k = int(s['num_sources'])
                true = s['angles'][:k]
                for name, cov in (('network', s['pred_cov']),
                                  ('music', s['cov'])):
                    se, n = matched_errors(self.music.estimate(cov, k), true)
                    result[name] = se
                result['count'] = n
                result['sqrt_crb'] = n * crb_mse_deg2(
                    self.geometry, true, s['source_cov'][:k, :k],
                    float(s['noise_power']), self.num_snapshots)
            self.results.append(result)

    def compute_metrics(self, results: list) -> Dict[str, float]:
        metrics = dict(val_loss=float(np.mean([r['frob'] for r in results])))
        if not self.decode:
            return metrics
        groups = defaultdict(list)
        for r in results:
            groups[r['snr']].append(r)
        rows = []
        for snr in sorted(groups) + [None]:
            group = results if snr is None else groups[snr]
            count = sum(r['count'] for r in group)
            rmse = [
                float(np.sqrt(sum(r[c] for r in group) / count))
                for c in COLUMNS
            ]
            suffix = '' if snr is None else f'@{snr:g}dB'
            for c, v in zip(COLUMNS, rmse):
                metrics[f'rmse_{c}{suffix}'] = v
            rows.append(('all' if snr is None else f'{snr:g}', len(group),
                         *rmse))
        table = ['RMSE (deg) per SNR', 'SNR dB | samples | network | MUSIC '
                 '| sqrt(CRB)']
        table += [f'{r[0]:>6} | {r[1]:>7} | {r[2]:7.3f} | {r[3]:5.3f} | '
                  f'{r[4]:9.4f}' for r in rows]
        print_log('\n'.join(table), logger='current', level=logging.INFO)
        return metrics
