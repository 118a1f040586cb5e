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
from .dml_search import DMLSearch
from .fit_selection import (best_subset, refine_fit, residual_power,
                            select_candidate)
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
    dml='DML fit by alternating projection',
    classical_switch='switch without network',
    fit_oracle='truth-aided fit (reference)',
    sqrt_crb='sqrt(CRB)')
REQUIRED = ('pred_cov', 'cov', 'cov_true', 'angles', 'num_sources', 'snr_db')


class Decoding:
    """Grid peaks of one decoder (a MUSIC estimator on the covariance it
    searches: the array's, or a smoothed subarray's), highest first.
    Only the rows that are used get refined, each set once: refinement is
    most of MUSIC's cost."""

    def __init__(self, music: MusicEstimator, cov: np.ndarray,
                 num_sources: int, peaks: np.ndarray) -> None:
        self.music, self.cov = music, cov
        self.num_sources, self.peaks = num_sources, peaks
        self._refined: Dict[tuple, np.ndarray] = {}

    def refined(self, rows: Sequence[int]) -> np.ndarray:
        rows = tuple(int(r) for r in rows)
        if rows not in self._refined:
            self._refined[rows] = self.music.refine_peaks(
                self.cov, self.num_sources, self.peaks[list(rows)])
        return self._refined[rows]

    def estimate(self) -> np.ndarray:
        """The decoder's estimate: its ``K`` highest peaks, refined."""
        return self.refined(range(self.num_sources))

    def candidate(self, geometry: ArrayGeometry, sample_cov: np.ndarray,
                  min_distance: float) -> np.ndarray:
        """The ``K`` peaks that fit ``sample_cov`` best, refined."""
        return self.refined(
            best_subset(geometry, sample_cov, self.peaks, self.num_sources,
                        min_distance))


@METRICS.register_module()
class RISDoAMetric(BaseMetric):
    """RMSE in degrees (Hungarian-matched, over sources and angle
    components) per SNR for these estimators on the same samples:

    * ``network``: the network's estimate: MUSIC on its covariance, or,
      with ``select_by_fit``, the ``reference`` estimate from the sample
      covariance (``dml`` or ``music``) unless the sample covariance
      rejects it in favour of one of the network covariance's decodings
      (``network_decoders``; with ``sample_candidates`` also those of
      ``classical_switch``) by a likelihood-ratio test at false-switch
      rate ``fit_alpha`` (:mod:`.fit_selection`), so the learned
      correction acts where the reference fails and does nothing
      elsewhere;
    * ``network_raw`` (with ``select_by_fit``): MUSIC on the network's
      covariance alone;
    * ``network_raw_fbss`` (with ``select_by_fit`` and the ``'fbss'``
      decoder): forward-backward spatially smoothed MUSIC on the
      network's covariance;
    * ``music``: MUSIC on the sample covariance;
    * ``music_fbss`` (with ``smoothing``, plain arrays only):
      forward-backward spatially smoothed MUSIC, the classical answer to
      correlated and coherent sources (:mod:`.spatial_smoothing`);
    * ``dml``: the deterministic maximum-likelihood fit of the sample
      covariance, searched globally by alternating projection
      (:mod:`.dml_search`) and refined off the grid; it weighs all of the
      sample covariance rather than its K principal eigenvectors, and
      holds for coherent sources;
    * ``classical_switch`` (with ``select_by_fit``, and ``smoothing`` or
      ``candidate_peaks``): the same test with candidates from the sample
      covariance alone (smoothed MUSIC, and the best subset of MUSIC's own
      peaks): what the switch gains without a network;
    * ``fit_oracle``: a reference that knows the truth: the ``reference``
      estimate, replaced by the local DML fit around the true directions
      wherever the sample covariance fits them better. Where the data
      prefer the reference's wrong answer to the truth, an estimator that
      follows the data's fit cannot be expected to find the truth, so this
      column shows roughly what following the fit can reach; in the
      threshold region, where sqrt(CRB) says nothing about gross errors,
      it is the more telling floor;
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
        reference: The estimate that test keeps unless the data reject
            it: ``'dml'`` (the ``dml`` column) or ``'music'`` (MUSIC on
            the sample covariance).
        network_decoders: How the network's covariance becomes candidate
            directions for that test: ``'music'`` and/or ``'fbss'``
            (smoothed MUSIC, which separates pairs the covariance leaves
            coherent: coherent sources, or close pairs with few
            snapshots; ignored in RIS mode).
        candidate_peaks: Peaks beyond K each decoding offers the test: its
            candidate is the K of its ``K + candidate_peaks`` highest
            peaks that fit the sample covariance best
            (:func:`.fit_selection.best_subset`); 0: its K highest.
        sample_candidates: The test in ``network`` also weighs the
            candidates ``classical_switch`` has from the sample covariance,
            so the network adds candidates rather than replacing them.
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
                 reference: str = 'dml',
                 network_decoders: Sequence[str] = ('music', 'fbss'),
                 candidate_peaks: int = 4,
                 sample_candidates: bool = True,
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
        if reference not in ('dml', 'music'):
            raise ValueError(f'RISDoAMetric: reference={reference!r}; '
                             "choose 'dml' or 'music'")
        self.reference = reference
        plain = self.geometry.phi is None
        self.smoothing = smoothing and plain
        unknown = set(network_decoders) - set(DECODERS)
        if unknown or not network_decoders:
            raise ValueError(
                f'RISDoAMetric: network_decoders={list(network_decoders)}; '
                f'choose one or more of {list(DECODERS)}')
        self.decoders = [d for d in network_decoders if d == 'music' or plain]
        if candidate_peaks < 0:
            raise ValueError('RISDoAMetric: candidate_peaks must be >= 0, '
                             f'got {candidate_peaks}')
        self.candidate_peaks = candidate_peaks
        self.sample_candidates = sample_candidates
        self.refine_switched = refine_switched
        self.gross_threshold = gross_threshold
        self.search = dict(
            az_range=az_range, el_range=el_range, grid_step=grid_step)
        self.bounds = [tuple(az_range),
                       tuple(el_range)][:self.geometry.angle_dims]
        self.music = MusicEstimator(self.geometry, **
                                    self.search) if decode else None
        self.dml_search = DMLSearch(self.music) if decode else None
        self._smoothed: Dict[tuple, MusicEstimator] = {}
        self.columns = ['network']
        if self.select:
            self.columns += [DECODERS[d] for d in self.decoders]
        self.columns.append('music')
        if self.smoothing:
            self.columns.append('music_fbss')
        self.columns.append('dml')
        if self.select and (self.smoothing or candidate_peaks):
            self.columns.append('classical_switch')
        self.columns.append('fit_oracle')

    def dml(self, cov: np.ndarray, k: int) -> np.ndarray:
        """The DML estimate: the alternating-projection grid search,
        refined within two grid steps."""
        return self.local_fit(cov, self.dml_search(cov, k))

    def local_fit(self, cov: np.ndarray, start: np.ndarray) -> np.ndarray:
        """The nearest minimum of the DML criterion on ``cov`` within two
        grid steps of ``start`` (:func:`.fit_selection.refine_fit`)."""
        return refine_fit(self.geometry, cov, start, self.bounds,
                          2 * self.search['grid_step'])

    def smoothed_music(self, cov: np.ndarray, k: int) -> np.ndarray:
        """Forward-backward spatially smoothed MUSIC estimate."""
        return self.decoding('fbss', cov, k, k).estimate()

    def decoding(self,
                 decoder: str,
                 cov: np.ndarray,
                 k: int,
                 num_peaks: Optional[int] = None) -> Decoding:
        """The ``num_peaks`` (default ``K + candidate_peaks``) highest grid
        peaks of ``cov`` by ``'music'`` or ``'fbss'``."""
        num = num_peaks or k + self.candidate_peaks
        if decoder == 'music':
            return Decoding(self.music, cov, k, self.music.peaks(cov, k, num))
        shape = subarray_shape(self.geometry, k)
        if shape not in self._smoothed:
            sub = ArrayGeometry(
                rows=shape[0], cols=shape[1], spacing=self.geometry.spacing)
            self._smoothed[shape] = MusicEstimator(sub, **self.search)
        music = self._smoothed[shape]
        smoothed = fb_spatial_smoothing(cov, self.geometry, *shape)
        return Decoding(music, smoothed, k, music.peaks(smoothed, k, num))

    def estimates(self, sample: dict) -> Dict[str, np.ndarray]:
        """Every column's direction estimates ``(K, dims)`` (degrees) for
        one sample."""
        k = int(sample['num_sources'])
        cov = sample['cov']
        if not self.select:
            out = dict(network=self.music.estimate(sample['pred_cov'], k))
            out['music'] = self.music.estimate(cov, k)
            if self.smoothing:
                out['music_fbss'] = self.smoothed_music(cov, k)
            out['dml'] = self.dml(cov, k)
            return out
        snapshots = int(sample.get('num_snapshots', self.num_snapshots))
        learned = {
            d: self.decoding(d, sample['pred_cov'], k)
            for d in self.decoders
        }
        # The sample covariance's own candidates: the best subset of
        # MUSIC's peaks, and smoothed MUSIC.
        music_peaks = self.decoding('music', cov, k)
        music = music_peaks.estimate()
        dml = self.dml(cov, k)
        reference = dml if self.reference == 'dml' else music
        own = {}
        if self.candidate_peaks:
            own['music'] = music_peaks
        if self.smoothing:
            own['fbss'] = self.decoding('fbss', cov, k)
        pool = dict(learned)
        if self.sample_candidates:
            pool.update({f'sample_{d}': p for d, p in own.items()})
        out = {'network': self.switch(cov, pool, reference, snapshots)}
        out.update({DECODERS[d]: p.estimate() for d, p in learned.items()})
        out['music'] = music
        if self.smoothing:
            out['music_fbss'] = own['fbss'].estimate()
        out['dml'] = dml
        if own:
            out['classical_switch'] = self.switch(cov, own, reference,
                                                  snapshots)
        return out

    def switch(self, cov: np.ndarray, decodings: Dict[str, Decoding],
               reference: np.ndarray, snapshots: int) -> np.ndarray:
        """``reference``, or the candidate of ``decodings`` that the fit
        test prefers, refined on the sample covariance if
        ``refine_switched``."""
        candidates = [
            d.candidate(self.geometry, cov, self.search['grid_step'])
            for d in decodings.values()
        ]
        choice = select_candidate(self.geometry, cov, candidates, reference,
                                  snapshots, self.fit_alpha)
        if choice is None:
            return reference
        if not self.refine_switched:
            return candidates[choice]
        return self.local_fit(cov, candidates[choice])

    def fit_oracle(self, cov: np.ndarray, true: np.ndarray,
                   reference: np.ndarray) -> np.ndarray:
        """The truth's local DML fit if the sample covariance prefers the
        true directions to ``reference``, else ``reference``."""
        if not (residual_power(self.geometry, cov, true) < residual_power(
                self.geometry, cov, reference)):
            return reference
        return self.local_fit(cov, true)

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
        estimates = self.estimates(sample)
        estimates['fit_oracle'] = self.fit_oracle(
            sample['cov'], true, estimates[self.reference])
        for name, est in estimates.items():
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
