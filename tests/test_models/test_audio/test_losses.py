import math

import torch
from mmengine.model import BaseModel

from engine_plugins.models.audio import STREAM_BOS, audio_lm_losses

X = -100


def _ce(row, target):
    return -(row[target] - math.log(sum(math.exp(v) for v in row)))


def test_text_and_audio_losses_by_hand():
    logits = torch.tensor([[[1.0, 2.0, 0.0], [0.5, -1.0, 2.0],
                            [3.0, 0.0, 0.0]]], requires_grad=True)
    # Position t is predicted by logits[t - 1]: targets 2 (from row 0)
    # and 0 (from row 1); the last row predicts nothing.
    labels = torch.tensor([[X, 2, 0]])
    # 3 frames x 2 codebooks x 3 classes; codebook 1's first target is
    # the stream BOS and is ignored.
    audio_logits = torch.tensor(
        [[[0.0, 1.0, 2.0], [1.0, 0.0, 0.0]],
         [[2.0, 2.0, 0.0], [0.0, 3.0, 1.0]],
         [[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]]], requires_grad=True)
    label_audio = torch.tensor([[2, 0, 1], [STREAM_BOS, 1, 2]])
    kept = label_audio.clone()
    losses = audio_lm_losses(logits, labels, audio_logits, label_audio)
    text = (_ce([1.0, 2.0, 0.0], 2) + _ce([0.5, -1.0, 2.0], 0)) / 2
    cb0 = (_ce([0.0, 1.0, 2.0], 2) + _ce([2.0, 2.0, 0.0], 0) +
           _ce([1.0, 0.0, 1.0], 1)) / 3
    cb1 = (_ce([0.0, 3.0, 1.0], 1) + _ce([0.0, 0.0, 0.0], 2)) / 2
    assert math.isclose(losses['loss_text'].item(), text, rel_tol=1e-6)
    assert math.isclose(losses['loss_audio'].item(), (cb0 + cb1) / 2,
                        rel_tol=1e-6)
    assert math.isclose(losses['ce_audio_cb1'].item(), cb1, rel_tol=1e-6)
    assert torch.equal(label_audio, kept)  # the batch is not mutated
    # Both connected, both > 0.
    assert losses['loss_text'] > 0 and losses['loss_audio'] > 0
    (losses['loss_text'] + losses['loss_audio']).backward()
    assert logits.grad.abs().sum() > 0 and audio_logits.grad.abs().sum() > 0
    # Per-codebook values are log only: mmengine sums keys with 'loss'.
    total, log_vars = BaseModel.parse_losses(None, losses)
    assert math.isclose(total.item(), text + (cb0 + cb1) / 2, rel_tol=1e-6)
    assert 'ce_audio_cb0' in log_vars
    assert losses['ce_audio_cb0'].grad_fn is None


def test_no_valid_labels_give_a_connected_zero():
    logits = torch.randn(2, 4, 5, requires_grad=True)
    audio_logits = torch.randn(3, 8, 1026, requires_grad=True)
    losses = audio_lm_losses(logits, torch.full((2, 4), X), audio_logits,
                             torch.full((8, 3), STREAM_BOS))
    for name in ('loss_text', 'loss_audio'):
        assert losses[name].item() == 0
        assert losses[name].grad_fn is not None  # not a fresh leaf
    (losses['loss_text'] + losses['loss_audio']).backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))
    assert audio_logits.grad is not None


def test_losses_run_in_fp32_under_bf16_autocast():
    logits = torch.randn(1, 5, 7).bfloat16().requires_grad_()
    audio_logits = torch.randn(4, 8, 1026).bfloat16().requires_grad_()
    labels = torch.tensor([[X, 1, 2, 3, 4]])
    with torch.autocast('cpu', dtype=torch.bfloat16):
        losses = audio_lm_losses(logits, labels, audio_logits,
                                 torch.randint(0, 1024, (8, 4)))
    assert losses['loss_text'].dtype == torch.float32
    assert losses['loss_audio'].dtype == torch.float32
    expected = torch.nn.functional.cross_entropy(logits[0, :-1].float(),
                                                 labels[0, 1:])
    torch.testing.assert_close(losses['loss_text'], expected)
