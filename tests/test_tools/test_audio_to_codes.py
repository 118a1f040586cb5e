"""tools/audio_to_codes.py and the built-in residual-VQ codec on tones."""
import numpy as np
import pytest
from scipy.io import wavfile

from engine_plugins.datasets.audio.rvq_codec import (FRAME_RATE, RVQCodec,
                                                     log_mel)
from tests.tool_loading import load_tool

audio_to_codes = load_tool('audio_to_codes')
SR = 16000


def _tone(freq, seconds=1.0, sr=SR, amp=0.5):
    t = np.arange(int(sr * seconds)) / sr
    return amp * np.sin(2 * np.pi * freq * t)


def test_tool_writes_8_by_T_codes_for_each_wav(tmp_path):
    wavs = tmp_path / 'wavs'
    wavs.mkdir()
    for freq in (220, 440, 880):
        wavfile.write(wavs / f'tone{freq}.wav', SR,
                      (_tone(freq) * 32767).astype(np.int16))
    # A 22.05 kHz stereo file is resampled and mixed down.
    stereo = np.stack([_tone(330, sr=22050)] * 2, 1).astype(np.float32)
    wavfile.write(wavs / 'stereo.wav', 22050, stereo)
    out = audio_to_codes.main([str(wavs), str(tmp_path / 'codes')])
    assert len(out) == 4 and (tmp_path / 'codes' / 'codec.npz').is_file()
    codes = np.load(tmp_path / 'codes' / 'tone440.npy')
    # 1 s at 25 frames/s.
    assert codes.shape == (8, FRAME_RATE) and codes.dtype == np.int16
    assert codes.min() >= 0 and codes.max() < 1024
    # Reusing the saved codec gives the same codes.
    audio_to_codes.main([
        str(wavs), str(tmp_path / 'again'), '--codec',
        str(tmp_path / 'codes' / 'codec.npz')
    ])
    assert np.array_equal(np.load(tmp_path / 'again' / 'tone440.npy'), codes)


def test_codec_separates_tones_and_residual_stages_refine():
    freqs = (200, 500, 1250, 3000)
    # A slow loudness wobble, so the frames of one tone are not identical.
    wobble = 1 + 0.3 * np.sin(2 * np.pi * 3 * np.arange(SR) / SR)
    waves = [_tone(f) * wobble for f in freqs]
    codec = RVQCodec.fit(waves, [SR] * 4, codebook_size=4)
    assert codec.codebooks.shape == (8, 4, 64)
    first = [codec.encode(w, SR)[0, 5:-5] for w in waves]
    # Stage 1 gives each tone its own code, the same in every frame.
    assert [len(set(c)) for c in first] == [1, 1, 1, 1]
    assert len({int(c[0]) for c in first}) == 4
    # Each residual stage reduces the reconstruction error (never raises).
    codes = codec.encode(waves[1], SR)
    target = log_mel(waves[1], SR)
    errors = [
        float(np.square(codec.decode(codes, s) - target).mean())
        for s in range(1, 9)
    ]
    assert all(b <= a + 1e-9 for a, b in zip(errors, errors[1:]))
    assert errors[-1] < 0.5 * errors[0]


def test_bad_inputs_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='no \\*.wav files in'):
        audio_to_codes.main([str(tmp_path), str(tmp_path / 'o')])
    (tmp_path / 'bad.wav').write_bytes(b'RIFF0000WAVE')
    with pytest.raises(ValueError, match='cannot read WAV file .*bad.wav'):
        audio_to_codes.main([str(tmp_path), str(tmp_path / 'o')])
    with pytest.raises(FileNotFoundError, match='tokenizer directory'):
        audio_to_codes.higgs_encoder(str(tmp_path / 'missing'))
