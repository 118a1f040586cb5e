"""A small residual-VQ codec: log-mel frames at 25 fps -> 8 x 1024 codes.

Not a neural codec: it needs only numpy/scipy, so WAV folders can be
turned into code files for the quick start without any download. Stage 1
quantizes each log-mel frame with k-means centroids; each later stage
quantizes what the earlier ones left (the residual), so the sum of the
chosen centroids approaches the frame as stages are added.

Example:
    >>> codec = RVQCodec.fit([wave1, wave2], sample_rate=16000)
    >>> codes = codec.encode(wave1, 16000)  # (8, T) int16, T ~ 25 * sec
"""
import math
from typing import List, Sequence

import numpy as np
from scipy.cluster.vq import kmeans2, vq
from scipy.signal import resample_poly, stft

SAMPLE_RATE = 16000
FRAME_RATE = 25
N_FFT = 1024
N_MELS = 64


def mel_filterbank(sr: int = SAMPLE_RATE,
                   n_fft: int = N_FFT,
                   n_mels: int = N_MELS) -> np.ndarray:
    """Triangular HTK-mel filters ``(n_mels, n_fft // 2 + 1)``.

    Written here because neither librosa nor torchaudio is a dependency;
    mel(f) = 2595 log10(1 + f / 700).
    """
    def to_mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def to_hz(m):
        return 700.0 * (10**(m / 2595.0) - 1.0)

    edges = to_hz(np.linspace(0.0, to_mel(sr / 2), n_mels + 2))
    freqs = np.linspace(0.0, sr / 2, n_fft // 2 + 1)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs - lo) / np.maximum(mid - lo, 1e-9)
    falling = (hi - freqs) / np.maximum(hi - mid, 1e-9)
    return np.clip(np.minimum(rising, falling), 0.0, None)


def log_mel(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    """``(samples,)`` mono audio -> ``(T, N_MELS)`` log-mel at 25 fps."""
    wave = np.asarray(wave, dtype=np.float64)
    if sample_rate != SAMPLE_RATE:
        g = math.gcd(sample_rate, SAMPLE_RATE)
        wave = resample_poly(wave, SAMPLE_RATE // g, sample_rate // g)
    hop = SAMPLE_RATE // FRAME_RATE
    _, _, spec = stft(
        wave, SAMPLE_RATE, nperseg=N_FFT, noverlap=N_FFT - hop,
        boundary=None, padded=True)
    power = np.abs(spec)**2  # (freq, T)
    return np.log(mel_filterbank() @ power + 1e-6).T.astype(np.float32)


class RVQCodec:
    """Residual VQ over log-mel frames.

    Args:
        codebooks: ``(num_codebooks, codebook_size, N_MELS)`` centroids.
    """

    def __init__(self, codebooks: np.ndarray) -> None:
        self.codebooks = np.asarray(codebooks, dtype=np.float32)

    @classmethod
    def fit(cls,
            waves: Sequence[np.ndarray],
            sample_rates: Sequence[int],
            num_codebooks: int = 8,
            codebook_size: int = 1024,
            seed: int = 0) -> 'RVQCodec':
        """k-means (k-means++ start) per stage on the residuals.

        With fewer distinct frames than ``codebook_size`` the stage keeps
        one centroid per distinct frame and repeats the last one to fill
        the codebook (repeats are never the nearest, so codes stay valid).
        """
        frames = np.concatenate(
            [log_mel(w, sr) for w, sr in zip(waves, sample_rates)])
        residual = frames.astype(np.float64)
        books: List[np.ndarray] = []
        for stage in range(num_codebooks):
            k = min(codebook_size, len(np.unique(residual, axis=0)))
            if k > 1:
                centroids, _ = kmeans2(
                    residual, k, minit='++', seed=seed + stage)
            else:
                centroids = residual[:1].copy()
            fill = np.repeat(centroids[-1:], codebook_size - k, axis=0)
            books.append(np.concatenate([centroids, fill]))
            codes, _ = vq(residual, centroids)
            residual = residual - centroids[codes]
        return cls(np.stack(books))

    def encode(self, wave: np.ndarray, sample_rate: int) -> np.ndarray:
        """``(8, T)`` int16 codes of one waveform."""
        residual = log_mel(wave, sample_rate).astype(np.float64)
        codes = []
        for book in self.codebooks.astype(np.float64):
            index, _ = vq(residual, book)
            codes.append(index)
            residual = residual - book[index]
        return np.stack(codes).astype(np.int16)

    def decode(self, codes: np.ndarray, stages: int = None) -> np.ndarray:
        """Log-mel frames ``(T, N_MELS)`` from the first ``stages`` codes.
        """
        stages = len(self.codebooks) if stages is None else stages
        return sum(self.codebooks[s][codes[s]] for s in range(stages))

    def save(self, path: str) -> None:
        np.savez(path, codebooks=self.codebooks,
                 frame_rate=FRAME_RATE, sample_rate=SAMPLE_RATE,
                 n_mels=N_MELS)

    @classmethod
    def load(cls, path: str) -> 'RVQCodec':
        with np.load(path) as data:
            if 'codebooks' not in data or int(data['n_mels']) != N_MELS:
                raise ValueError(f'{path} is not an RVQCodec file')
            return cls(data['codebooks'])
