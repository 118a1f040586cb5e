"""Registered DoA metric: network vs MUSIC (plain and smoothed) vs
sqrt(CRB), per SNR, with gross errors counted apart."""
import logging
from collections import defaultdict
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from engine_plugins.registry import METRICS
from engine_plugins.structures import ArrayGeometry
from .crb import crb_mse_deg2, matched_source_errors
from .fit_selection import prefer_candidate, refine_fit, select_candidate
from .music import MusicEstimator
from .spatial_smoothing import fb_spatial_smoothing, subarray_shape

# Decoders of the network's covariance and the columns they fill.
DECODERS = dict(music='network_raw', fbss='network_raw_fbss')
# What each column is, for tables and plots.
COLUMN_LABELS = dict(
    network='network',
    network_raw='network covariance alone',
    network_raw_fbss='network covariance alone, smoothed',
    music='MUSIC on the sample covariance',
    music_fbss='FB spatial smoothing MUSIC',
    classical_switch='switch without network',
    sqrt_crb='sqrt(CRB)')
REQUIRED = ('pred_cov', 'cov', 'cov_true', 'angles', 'num_sources', 'snr_db')


@METRICS.register_module()
class RISDoAMetric(BaseMetric):
    """RMSE in degrees (Hungarian-matched, over sources and angle
    components) per SNR for these estimators on the same samples:

    * ``network``: the network's estimate: MUSIC on its covariance, or,
      with ``select_by_fit``, MUSIC on the sample covariance unless the
      sample covariance rejects that estimate in favour of one of the
      network covariance's decodings (``network_decoders``) by a
      likelihood-ratio test at false-switch rate ``fit_alpha``
      (:mod:`.fit_selection`), so the learned correction acts where MUSIC
      fails and does nothing elsewhere;
    * ``network_raw`` (with ``select_by_fit``): MUSIC on the network's
      covariance alone;
    * ``network_raw_fbss`` (with ``select_by_fit`` and the ``'fbss'``
      decoder): forward-backward spatially smoothed MUSIC on the
      network's covariance;
    * ``music``: MUSIC on the sample covariance;
    * ``music_fbss`` (with ``smoothing``, plain arrays only):
      forward-backward spatially smoothed MUSIC, the classical answer to
      correlated and coherent sources (:mod:`.spatial_smoothing`);
    * ``classical_switch`` (with ``select_by_fit`` and ``smoothing``): the
      same test choosing between ``music`` and ``music_fbss``, both on the
      sample covariance: what the switch gains without a network;
    * ``sqrt_crb``: the root of the mean stochastic CRB diagonal.

    The source count K is known. A source whose matched error exceeds
    ``gross_threshold`` degrees is a gross error (a resolution failure):
    ``gross_<column>`` is their fraction, ``rmse_fine_<column>`` the RMSE
    of the other sources. Also reports ``val_loss``: the relative
    Frobenius error of the network's covariance (what ``tools/hpo.py``
    prunes on). Keys: ``<name>_<column>`` over all SNRs and
    ``<name>_<column>@<snr>dB``.

    Args:
        geometry: :class:`ArrayGeometry` arguments (as the dataset's).
        num_snapshots: T for the CRB, for samples without a
            ``num_snapshots`` field.
        az_range, el_range: MUSIC search range (degrees).
        grid_step: MUSIC grid spacing (degrees).
        decode: Run MUSIC / CRB (off: only ``val_loss``, for fast HPO).
        select_by_fit: Use the network's estimate only where the sample
            covariance rejects MUSIC's (see above).
        fit_alpha: False-switch rate of that test (over all decodings).
        network_decoders: How the network's covariance becomes candidate
            directions for that test: ``'music'`` and/or ``'fbss'``
            (smoothed MUSIC, which separates pairs the covariance leaves
            coherent: coherent sources, or close pairs with few
            snapshots; ignored in RIS mode).
        refine_switched: Move an estimate that replaced MUSIC's (in
            ``network`` and ``classical_switch``) to the nearest minimum
            of the DML criterion on the sample covariance, within two
            grid steps (:func:`.fit_selection.refine_fit`): the
            replacement keeps its resolved sources and loses the error
            of the covariance it was decoded from.
        smoothing: Add the ``music_fbss`` column (ignored in RIS mode).
        gross_threshold: Degrees above which a source's error is gross.

    Example:
        >>> val_evaluator = dict(
        ...     type='RISDoAMetric', geometry=dict(rows=8, cols=8),
        ...     num_snapshots=64, grid_step=1.0, select_by_fit=True,
        ...     network_decoders=('music', 'fbss'))
    """

    default_prefix = 'ris'

    def __init__(self,
                 geometry: Optional[dict] = None,
                 num_snapshots: int = 64,
                 az_range: Sequence[float] = (-60.0, 60.0),
                 el_range: Sequence[float] = (-30.0, 30.0),
                 grid_step: float = 1.0,
                 decode: bool = True,
                 select_by_fit: bool = True,
                 fit_alpha: float = 0.05,
                 network_decoders: Sequence[str] = ('music', 'fbss'),
                 refine_switched: bool = True,
                 smoothing: bool = True,
                 gross_threshold: float = 5.0,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.geometry = ArrayGeometry(**(geometry or {}))
        self.num_snapshots = num_snapshots
        self.decode = decode
        self.select = select_by_fit
        self.fit_alpha = fit_alpha
        plain = self.geometry.phi is None
        self.smoothing = smoothing and plain
        unknown = set(network_decoders) - set(DECODERS)
        if unknown or not network_decoders:
            raise ValueError(
                f'RISDoAMetric: network_decoders={list(network_decoders)}; '
                f'choose one or more of {list(DECODERS)}')
        self.decoders = [d for d in network_decoders if d == 'music' or plain]
        self.refine_switched = refine_switched
        self.gross_threshold = gross_threshold
        self.search = dict(
            az_range=az_range, el_range=el_range, grid_step=grid_step)
        self.bounds = [tuple(az_range),
                       tuple(el_range)][:self.geometry.angle_dims]
        self.music = MusicEstimator(self.geometry, **
                                    self.search) if decode else None
        self._smoothed: Dict[tuple, MusicEstimator] = {}
        self.columns = ['network']
        if self.select:
            self.columns += [DECODERS[d] for d in self.decoders]
        self.columns.append('music')
        if self.smoothing:
            self.columns.append('music_fbss')
            if self.select:
                self.columns.append('classical_switch')

    def smoothed_music(self, cov: np.ndarray, k: int) -> np.ndarray:
        """Forward-backward spatially smoothed MUSIC estimate."""
        shape = subarray_shape(self.geometry, k)
        if shape not in self._smoothed:
            sub = ArrayGeometry(
                rows=shape[0], cols=shape[1], spacing=self.geometry.spacing)
            self._smoothed[shape] = MusicEstimator(sub, **self.search)
        smoothed = fb_spatial_smoothing(cov, self.geometry, *shape)
        return self._smoothed[shape].estimate(smoothed, k)

    def estimates(self, sample: dict) -> Dict[str, np.ndarray]:
        """Every column's direction estimates ``(K, dims)`` (degrees) for
        one sample."""
        k = int(sample['num_sources'])
        cov = sample['cov']
        music = self.music.estimate(cov, k)
        if not self.select:
            out = dict(network=self.music.estimate(sample['pred_cov'], k))
        else:
            decoded = {
                DECODERS[d]: self.decode_with(d, sample['pred_cov'], k)
                for d in self.decoders
            }
            snapshots = int(sample.get('num_snapshots', self.num_snapshots))
            choice = select_candidate(self.geometry, cov,
                                      list(decoded.values()), music, snapshots,
                                      self.fit_alpha)
            network = music
            if choice is not None:
                network = self.switched(cov, list(decoded.values())[choice])
            out = dict(network=network, **decoded)
        out['music'] = music
        if self.smoothing:
            out['music_fbss'] = self.smoothed_music(cov, k)
            if self.select:
                switch = prefer_candidate(self.geometry, cov,
                                          out['music_fbss'], music, snapshots,
                                          self.fit_alpha)
                out['classical_switch'] = (
                    self.switched(cov, out['music_fbss']) if switch else music)
        return out

    def switched(self, cov: np.ndarray, estimate: np.ndarray) -> np.ndarray:
        """An estimate that replaces MUSIC's, refined on the sample
        covariance if ``refine_switched``."""
        if not self.refine_switched:
            return estimate
        return refine_fit(self.geometry, cov, estimate, self.bounds,
                          2 * self.search['grid_step'])

    def decode_with(self, decoder: str, cov: np.ndarray, k: int) -> np.ndarray:
        """Directions from ``cov`` by ``'music'`` or ``'fbss'``."""
        if decoder == 'fbss':
            return self.smoothed_music(cov, k)
        return self.music.estimate(cov, k)

    def sample_result(self, sample: dict) -> dict:
        """The per-sample record :meth:`compute_metrics` aggregates: SNR,
        Frobenius error and, when decoding, each column's per-source
        squared errors (``<column>_src``) and their sum (``<column>``)."""
        missing = set(REQUIRED) - set(sample)
        if missing:
            raise KeyError(f'RISDoAMetric: prediction lacks fields '
                           f'{sorted(missing)}; got {sorted(sample)}')
        true_cov = sample['cov_true']
        error = np.abs(sample['pred_cov'] - true_cov)**2
        frob = error.sum() / (np.abs(true_cov)**2).sum()
        result = dict(snr=float(sample['snr_db']), frob=float(frob))
        if not self.decode:
            return result
        k = int(sample['num_sources'])
        true = sample['angles'][:k]
        snapshots = int(sample.get('num_snapshots', self.num_snapshots))
        for name, est in self.estimates(sample).items():
            errors = matched_source_errors(est, true)
            result[f'{name}_src'] = errors.tolist()
            result[name] = float(errors.sum())
        result['count'] = np.atleast_2d(true).size
        result['sqrt_crb'] = result['count'] * crb_mse_deg2(
            self.geometry, true, sample['source_cov'][:k, :k],
            float(sample['noise_power']), snapshots)
        return result

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for s in data_samples:
            self.results.append(self.sample_result(s))

    def summarize(self, group: List[dict]) -> Dict[str, float]:
        """RMSE, gross-error fraction and fine RMSE of each column over
        ``group`` (records from :meth:`sample_result`), unprefixed keys
        without the SNR suffix."""
        count = sum(r['count'] for r in group)
        out = {}
        for c in self.columns + ['sqrt_crb']:
            out[f'rmse_{c}'] = float(np.sqrt(sum(r[c] for r in group) / count))
        for c in self.columns:
            if not all(f'{c}_src' in r for r in group):
                continue  # records made without per-source errors
            dims = [r['count'] // len(r[f'{c}_src']) for r in group]
            errors = [(e, d) for r, d in zip(group, dims)
                      for e in r[f'{c}_src']]
            fine = [(e, d) for e, d in errors
                    if np.sqrt(e) <= self.gross_threshold]
            out[f'gross_{c}'] = 1.0 - len(fine) / len(errors)
            fine_count = sum(d for _, d in fine)
            out[f'rmse_fine_{c}'] = float(
                np.sqrt(sum(e for e, _ in fine) /
                        fine_count)) if fine_count else float('nan')
        return out

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
            summary = self.summarize(group)
            suffix = '' if snr is None else f'@{snr:g}dB'
            metrics.update({k + suffix: v for k, v in summary.items()})
            rows.append(
                ('all' if snr is None else f'{snr:g}', len(group), summary))
        print_log(self.table(rows), logger='current', level=logging.INFO)
        return metrics

    def table(self, rows: list) -> str:
        """RMSE per SNR, then gross-error percentages (when known)."""
        names = self.columns + ['sqrt_crb']
        lines = [
            'RMSE (deg) per SNR', 'SNR dB | samples | ' + ' | '.join(names)
        ]
        for snr, n, s in rows:
            lines.append(f'{snr:>6} | {n:>7} | ' +
                         ' | '.join(f'{s[f"rmse_{c}"]:{max(len(c), 7)}.3f}'
                                    for c in names))
        if all(f'gross_{self.columns[0]}' in s for _, _, s in rows):
            lines.append(f'sources with error > {self.gross_threshold:g} '
                         'deg (%), then RMSE of the others (deg)')
            for snr, n, s in rows:
                lines.append(f'{snr:>6} | {n:>7} | ' +
                             ' | '.join(f'{100 * s[f"gross_{c}"]:5.1f}% '
                                        f'{s[f"rmse_fine_{c}"]:6.3f}'
                                        for c in self.columns))
        return '\n'.join(lines)
