import pytest
import torch

from engine_plugins.models.audio import DualFFNAudioLM
from engine_plugins.registry import MODELS
from .common import AUDIO_IN, AUDIO_OUT, hand_batch


def _model(**kwargs):
    torch.manual_seed(0)
    return MODELS.build(
        dict(
            type='DualFFNAudioLM',
            audio_out_token_id=AUDIO_OUT,
            audio_in_token_id=AUDIO_IN,
            **kwargs))


def test_modes():
    model = _model().eval()
    batch = hand_batch()
    out = model(**batch, mode='tensor')
    assert set(out) == {
        'logits', 'audio_logits', 'expanded_labels', 'attention_mask',
        'audio_out_mask'
    }
    preds = model(**batch, mode='predict')
    assert [len(p['text_ids']) for p in preds] == [39, 14]
    assert preds[0]['audio_ids'].shape == (8, 33)
    torch.testing.assert_close(
        preds[0]['audio_ids'], out['audio_logits'].argmax(-1).t())
    losses = model(**batch, mode='loss')
    assert set(k for k in losses if 'loss' in k) == {'loss_text',
                                                     'loss_audio'}
    assert len([k for k in losses if k.startswith('ce_audio_cb')]) == 8


def test_text_only_batch_keeps_audio_loss_connected():
    ids = torch.tensor([[10, 11, 12]])
    losses = _model()(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        label_ids=torch.tensor([[-100, 11, 12]]),
        audio_out_ids=torch.zeros(8, 0, dtype=torch.long),
        audio_out_ids_start=torch.zeros(0, dtype=torch.long),
        label_audio_ids=torch.zeros(8, 0, dtype=torch.long),
        mode='loss')
    assert losses['loss_text'] > 0
    assert losses['loss_audio'].item() == 0
    assert losses['loss_audio'].grad_fn is not None


def test_loss_weights_scale_the_terms():
    batch = hand_batch()
    plain = _model()(**batch, mode='loss')
    weighted = _model(text_loss_weight=0.5,
                      audio_loss_weight=2.0)(**batch, mode='loss')
    torch.testing.assert_close(weighted['loss_text'],
                               plain['loss_text'] * 0.5)
    torch.testing.assert_close(weighted['loss_audio'],
                               plain['loss_audio'] * 2.0)


def test_errors_name_the_problem():
    batch = hand_batch()
    del batch['label_audio_ids']
    with pytest.raises(ValueError, match=r"needs \['label_audio_ids'\]"):
        _model()(**batch, mode='loss')
    with pytest.raises(ValueError, match="invalid mode 'train'"):
        _model()(**hand_batch(), mode='train')
    with pytest.raises(KeyError, match="unknown size 'huge'"):
        DualFFNAudioLM(AUDIO_OUT, AUDIO_IN, size='huge')
    assert DualFFNAudioLM.required_inputs == (
        'input_ids', 'attention_mask', 'label_ids', 'audio_out_ids',
        'audio_out_ids_start', 'label_audio_ids')
