"""Turn a folder of WAV files into (8, T) audio-code files (.npy).

With ``--higgs-tokenizer DIR`` (a local Higgs Audio v2 tokenizer directory
and the ``boson_multimodal`` package) the codes are Higgs-compatible.
Otherwise the built-in residual-VQ codec is used (8 codebooks x 1024,
k-means on log-mel frames at 25 fps): it is fitted on the folder and saved
as OUT_DIR/codec.npz, or loaded with ``--codec``.

Example:
    python tools/audio_to_codes.py wavs/ data/my_voice/codes
"""
import argparse
import glob
import importlib.util
import os
import os.path as osp
import sys
from typing import Callable, List, Tuple

import numpy as np
from scipy.io import wavfile

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from engine_plugins.datasets.audio.rvq_codec import RVQCodec  # noqa: E402


def read_wav(path: str) -> Tuple[np.ndarray, int]:
    """Mono float waveform in [-1, 1] and its sample rate."""
    try:
        rate, data = wavfile.read(path)
    except Exception as exc:  # scipy raises ValueError or struct errors
        raise ValueError(f'cannot read WAV file {path}: {exc}') from exc
    if np.issubdtype(data.dtype, np.integer):
        data = data / float(np.iinfo(data.dtype).max)
    data = np.asarray(data, dtype=np.float64)
    if data.ndim == 2:
        data = data.mean(axis=1)
    if data.size == 0:
        raise ValueError(f'WAV file {path} has no samples')
    return data, rate


def higgs_encoder(directory: str) -> Callable[[str], np.ndarray]:
    """Encode with a local Higgs Audio tokenizer (boson_multimodal)."""
    if not osp.isdir(directory):
        raise FileNotFoundError(f'tokenizer directory not found: {directory}')
    if importlib.util.find_spec('boson_multimodal') is None:
        raise ImportError('--higgs-tokenizer needs the boson_multimodal '
                          'package; without it, leave the flag out to use '
                          'the built-in codec')
    from boson_multimodal.audio_processing.higgs_audio_tokenizer import \
        load_higgs_audio_tokenizer
    tokenizer = load_higgs_audio_tokenizer(directory, device='cpu')

    def encode(path: str) -> np.ndarray:
        codes = tokenizer.encode(path)
        return np.asarray(getattr(codes, 'cpu', lambda: codes)())

    return encode


def main(argv=None) -> List[str]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('wav_dir')
    parser.add_argument('out_dir')
    parser.add_argument('--codec', help='a saved codec.npz to reuse')
    parser.add_argument('--higgs-tokenizer', help='local tokenizer dir')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    wavs = sorted(glob.glob(osp.join(args.wav_dir, '*.wav')))
    if not wavs:
        raise FileNotFoundError(f'no *.wav files in {args.wav_dir}')
    os.makedirs(args.out_dir, exist_ok=True)
    if args.higgs_tokenizer:
        encode = higgs_encoder(args.higgs_tokenizer)
    else:
        loaded = {p: read_wav(p) for p in wavs}
        if args.codec:
            codec = RVQCodec.load(args.codec)
        else:
            codec = RVQCodec.fit([w for w, _ in loaded.values()],
                                 [r for _, r in loaded.values()],
                                 seed=args.seed)
            codec.save(osp.join(args.out_dir, 'codec.npz'))

        def encode(path: str) -> np.ndarray:
            return codec.encode(*loaded[path])

    written = []
    for path in wavs:
        codes = encode(path)
        if codes.ndim != 2 or codes.shape[0] != 8:
            raise ValueError(f'{path}: the tokenizer returned codes of '
                             f'shape {codes.shape}, expected (8, T)')
        out = osp.join(args.out_dir,
                       osp.splitext(osp.basename(path))[0] + '.npy')
        np.save(out, codes.astype(np.int16))
        written.append(out)
    print(f'wrote {len(written)} code files to {args.out_dir}')
    return written


if __name__ == '__main__':
    main()
