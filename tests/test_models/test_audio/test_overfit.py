"""Overfit 4 demo samples: the loss falls and greedy decoding reproduces a
training sample's audio codes."""
import pytest
import torch

from engine_plugins.datasets.audio import (AudioChatDataset, audio_lm_collate,
                                           make_audio_demo_data)
from engine_plugins.models.audio import DualFFNAudioLM
from .common import AUDIO_IN, AUDIO_OUT


@pytest.mark.slow
def test_overfit_four_samples_then_decode_their_codes(tmp_path):
    torch.manual_seed(0)
    dataset = AudioChatDataset(
        make_audio_demo_data(str(tmp_path), num_samples=4))
    samples = [dataset[i] for i in range(4)]
    batch = audio_lm_collate(samples)
    model = DualFFNAudioLM(AUDIO_OUT, AUDIO_IN, size='tiny')
    optim = torch.optim.Adam(model.parameters(), lr=3e-3)
    history = []
    for _ in range(70):
        losses = model(**batch, mode='loss')
        loss = losses['loss_text'] + losses['loss_audio']
        optim.zero_grad()
        loss.backward()
        optim.step()
        history.append(loss.item())
    assert history[-1] <= 0.2 * history[0], history
    model.eval()
    decoded = 0
    for sample in samples:
        ids = sample['input_ids']
        end = int((ids == AUDIO_OUT).nonzero()[0, 0]) + 1
        codes = model.generate_audio(
            ids[:end], max_frames=32, audio_in=sample['audio_in'])
        decoded += torch.equal(codes, sample['audio_out'][0])
    # Every sample's codes come back exactly, length included (the model
    # also learned where each stream ends).
    assert decoded == 4
