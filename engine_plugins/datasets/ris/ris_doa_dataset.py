"""Registered DoA dataset: simulated scenes, on the fly or cached."""
import hashlib
import io
import json
import os.path as osp
from typing import Dict, Optional, Sequence, Union

import numpy as np
import torch
from torch.utils.data import Dataset

from engine_plugins.engine.checkpoints import write_atomically
from engine_plugins.registry import DATASETS
from engine_plugins.structures import ArrayGeometry
from .simulation import simulate_scene

# Arrays kept in a val/test cache file, with their per-sample shapes
# (filled in by ``_shapes``).
CACHE_KEYS = ('cov', 'cov_true', 'angles', 'steering', 'source_cov',
              'noise_power', 'num_sources', 'snr_db', 'num_snapshots',
              'correlation')
# Bumped when the content of a cached split changes for the same settings.
CACHE_FORMAT = 2


def _as_choices(name: str, value, valid) -> list:
    """A scalar or a non-empty list of valid values, as a list."""
    choices = list(value) if isinstance(value, (list, tuple)) else [value]
    bad = [v for v in choices if not isinstance(v, (int, float)) or
           isinstance(v, bool) or not valid(v)]
    if not choices or bad:
        raise ValueError(f'RISDoADataset: {name}={value!r} has invalid '
                         f'values {bad}' if bad else
                         f'RISDoADataset: {name} is an empty list')
    return choices


@DATASETS.register_module()
class RISDoADataset(Dataset):
    """Simulated array / RIS snapshots for direction finding.

    ``split='train'`` draws a new scene at every access (from torch's RNG,
    which mmengine seeds per worker), so epochs never repeat. ``'val'`` and
    ``'test'`` are ``num_samples`` fixed scenes drawn from ``seed``,
    generated once and cached in ``cache_dir``; sample ``i`` has SNR
    ``snr_db[i % len(snr_db)]`` so every SNR gets the same count, and
    cycles through the listed snapshot counts and correlations in the same
    way (all combinations when ``num_samples`` is a multiple of the
    product of the list lengths).

    Each item is ``dict(inputs=(2, D, D) float32 real/imag of the sample
    covariance, data_samples=dict(...))`` with ``cov``, ``cov_true``
    (complex64, trace = D), ``angles`` (degrees, ``(K_max, angle_dims)``,
    zero-padded), ``steering`` (complex64 ``(D, K_max)`` at those angles),
    ``num_sources``, ``snr_db``, ``num_snapshots``, ``correlation``,
    ``source_cov`` and ``noise_power`` (for the CRB).

    Args:
        geometry: :class:`ArrayGeometry` arguments.
        num_sources: K, or ``(K_min, K_max)`` for a random count.
        num_snapshots: T, or a list of T values: ``'train'`` draws one per
            scene, ``'val'``/``'test'`` cycle through them.
        snr_db: For ``'train'``, SNRs are drawn uniformly between the
            smallest and largest value; for ``'val'``/``'test'``, sample
            ``i`` uses ``snr_db[i % len(snr_db)]``.
        split: ``'train'``, ``'val'`` or ``'test'``.
        num_samples: Length of the dataset (of an epoch for ``'train'``).
        seed: Seed of the fixed splits.
        cache_dir: Where fixed splits are stored (None: kept in memory).
        correlation: Source correlation (1: coherent), or a list of values
            drawn from like ``num_snapshots``.
        power_db_range, az_range, el_range, min_separation: See
            :func:`simulate_scene`.

    Example:
        >>> dataset = dict(
        ...     type='RISDoADataset', geometry=dict(rows=8, cols=8),
        ...     num_sources=(1, 3), num_snapshots=64, snr_db=[-10, 0, 10],
        ...     split='val', num_samples=300, cache_dir='data/ris_cache')
    """

    def __init__(self,
                 geometry: Optional[dict] = None,
                 num_sources: Union[int, Sequence[int]] = 2,
                 num_snapshots: Union[int, Sequence[int]] = 64,
                 snr_db: Sequence[float] = (-10.0, 20.0),
                 split: str = 'train',
                 num_samples: int = 1000,
                 seed: int = 0,
                 cache_dir: Optional[str] = None,
                 power_db_range: Sequence[float] = (0.0, 0.0),
                 correlation: Union[float, Sequence[float]] = 0.0,
                 az_range: Sequence[float] = (-60.0, 60.0),
                 el_range: Sequence[float] = (-30.0, 30.0),
                 min_separation: float = 5.0) -> None:
        if split not in ('train', 'val', 'test'):
            raise ValueError(f"split must be 'train', 'val' or 'test', "
                             f'got {split!r}')
        self.geometry_cfg = dict(geometry or {})
        self.geometry = ArrayGeometry(**self.geometry_cfg)
        k = ([num_sources] * 2 if isinstance(num_sources, int) else
             list(num_sources))
        if len(k) != 2 or not 1 <= k[0] <= k[1] < self.geometry.dim:
            raise ValueError(
                f'num_sources must be K or (K_min, K_max) with 1 <= K < '
                f'{self.geometry.dim} (array dimension), got {num_sources}')
        self.k_range = k
        self.max_sources = k[1]
        self.snapshot_counts = _as_choices('num_snapshots', num_snapshots,
                                           lambda t: int(t) == t and t >= 1)
        self.correlations = _as_choices('correlation', correlation,
                                        lambda r: 0 <= r <= 1)
        self.num_snapshots = num_snapshots
        self.snr_db = list(snr_db)
        self.split, self.num_samples, self.seed = split, num_samples, seed
        self.scene_kwargs = dict(
            power_db_range=tuple(power_db_range),
            az_range=tuple(az_range),
            el_range=tuple(el_range),
            min_separation=min_separation)
        self.data = None
        if split != 'train':
            self.data = self._load_or_generate(cache_dir)

    # -- generation -----------------------------------------------------------
    def _draw_snr(self, rng: np.random.Generator, idx: int) -> float:
        if self.split == 'train':
            return float(rng.uniform(min(self.snr_db), max(self.snr_db)))
        return float(self.snr_db[idx % len(self.snr_db)])

    def _draw_setting(self, rng: np.random.Generator, idx: int):
        """(T, correlation) of scene ``idx``; random only for training
        with more than one choice, so single values draw nothing from
        ``rng``."""
        picked, stride = [], len(self.snr_db)
        for choices in (self.snapshot_counts, self.correlations):
            if len(choices) == 1:
                picked.append(choices[0])
            elif self.split == 'train':
                picked.append(choices[int(rng.integers(len(choices)))])
            else:
                picked.append(choices[(idx // stride) % len(choices)])
            stride *= len(choices)
        return int(picked[0]), float(picked[1])

    def scene(self, rng: np.random.Generator, idx: int) -> Dict:
        """One padded scene (numpy) drawn from ``rng``."""
        k = int(rng.integers(self.k_range[0], self.k_range[1] + 1))
        snr = self._draw_snr(rng, idx)
        snapshots, correlation = self._draw_setting(rng, idx)
        s = simulate_scene(self.geometry, rng, k, snapshots, snr,
                           correlation=correlation, **self.scene_kwargs)
        angles = np.zeros((self.max_sources, self.geometry.angle_dims))
        angles[:k] = s['angles']
        # The losses' steering vectors come from the geometry that made the
        # data (so a model cannot disagree with it), computed here rather
        # than on the host in every training step. Padded columns hold the
        # (unit-norm) steering at the padded angle, masked by num_sources.
        steering = self.geometry.steering(np.radians(angles)).astype(
            np.complex64)
        src = np.zeros((self.max_sources, ) * 2, np.complex128)
        src[:k, :k] = s['source_cov']
        return dict(
            cov=s['cov'].astype(np.complex64),
            cov_true=s['cov_true'].astype(np.complex64),
            angles=angles.astype(np.float32),
            steering=steering,
            source_cov=src.astype(np.complex64),
            noise_power=np.float32(s['noise_power']),
            num_sources=np.int64(k),
            snr_db=np.float32(snr),
            num_snapshots=np.int64(snapshots),
            correlation=np.float32(correlation))

    def _signature(self) -> dict:
        return dict(
            format=CACHE_FORMAT,
            geometry=self.geometry_cfg,
            k_range=self.k_range,
            num_snapshots=self.snapshot_counts,
            correlation=self.correlations,
            snr_db=self.snr_db,
            split=self.split,
            num_samples=self.num_samples,
            seed=self.seed,
            **{k: list(v) if isinstance(v, tuple) else v
               for k, v in self.scene_kwargs.items()})

    def _generate(self) -> Dict[str, np.ndarray]:
        # Split seed offsets keep val and test disjoint for the same seed.
        offset = {'val': 1, 'test': 2}[self.split]
        scenes = [
            self.scene(np.random.default_rng([self.seed, offset, i]), i)
            for i in range(self.num_samples)
        ]
        return {k: np.stack([s[k] for s in scenes]) for k in CACHE_KEYS}

    def _load_or_generate(self, cache_dir: Optional[str]) -> Dict:
        if cache_dir is None:
            return self._generate()
        signature = json.dumps(self._signature(), sort_keys=True)
        digest = hashlib.sha1(signature.encode()).hexdigest()[:12]
        path = osp.join(cache_dir, f'ris_{self.split}_{digest}.npz')
        if not osp.exists(path):
            data = self._generate()
            # Atomic: ranks or test workers that build the same split at
            # once each rename a whole file into place.
            buffer = io.BytesIO()
            np.savez(buffer, signature=np.array(signature), **data)
            write_atomically(path, buffer.getvalue())
            return data
        return self._load(path, signature)

    def _load(self, path: str, signature: str) -> Dict[str, np.ndarray]:
        hint = 'delete it to regenerate the split'
        try:
            with np.load(path, allow_pickle=False) as f:
                data = {k: f[k] for k in f.files}
        except Exception as exc:
            raise RuntimeError(
                f'RIS cache file {path} is corrupt ({type(exc).__name__}: '
                f'{exc}); {hint}') from exc
        missing = [k for k in CACHE_KEYS + ('signature', ) if k not in data]
        if missing:
            raise RuntimeError(
                f'RIS cache file {path} lacks fields {missing}; {hint}')
        if str(data.pop('signature')) != signature:
            raise RuntimeError(
                f'RIS cache file {path} was made with other settings; {hint}')
        expected = self.scene(np.random.default_rng(0), 0)
        for key in CACHE_KEYS:
            shape = (self.num_samples, ) + np.shape(expected[key])
            if data[key].shape != shape:
                raise RuntimeError(
                    f'RIS cache file {path}: field {key!r} has shape '
                    f'{data[key].shape}, expected {shape}; {hint}')
        return data

    # -- access ---------------------------------------------------------------
    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, idx: int) -> dict:
        if self.data is None:
            seed = int(torch.randint(0, 2**62, ()).item())
            item = self.scene(np.random.default_rng(seed), idx)
        else:
            item = {k: v[idx] for k, v in self.data.items()}
        sample = {k: torch.as_tensor(np.asarray(v)) for k, v in item.items()}
        cov = sample['cov']
        return dict(
            inputs=torch.stack([cov.real, cov.imag]).float(),
            data_samples=sample)
