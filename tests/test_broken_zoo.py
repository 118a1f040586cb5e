"""Every seed failure, reproduced in tests/broken_zoo.py, is stopped at the
iteration where it first happens with the diagnosis; each fixed twin
trains."""
import os.path as osp
import re
import uuid

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

import tests.broken_zoo  # noqa: F401  (registers the zoo)
from engine_plugins.engine import (DeadLossError, FP32LossRegionHook,
                                   NonFiniteGradError)
from engine_plugins.engine.sanity.preflight import (BatchContractError,
                                                    LossRangeError,
                                                    TargetFormatError)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
RUNTIME = osp.join(REPO, 'configs', '_base_', 'default_runtime.py')


def _run(tmp_path, model, dataset, iters=30, lr=0.05, amp=False,
         collate='default_collate', hooks=(), locate=False):
    cfg = Config.fromfile(RUNTIME)
    cfg.merge_from_dict(
        dict(
            work_dir=str(tmp_path),
            # mmengine keeps one message hub and one visualizer per
            # experiment name in a process: a repeated name (runs in the
            # same second, or a second import of this module under another
            # name) sends the scalars to the earlier run's folder.
            experiment_name=f'zoo_{uuid.uuid4().hex[:12]}',
            model=model,
            train_dataloader=dict(
                batch_size=4,
                num_workers=0,
                sampler=dict(type='DefaultSampler', shuffle=False),
                collate_fn=dict(type=collate),
                dataset=dataset),
            train_cfg=dict(by_epoch=False, max_iters=iters),
            optim_wrapper=dict(
                type='AmpGradSanityOptimWrapper'
                if amp else 'GradSanityOptimWrapper',
                optimizer=dict(type='Adam', lr=lr)),
            custom_hooks=list(hooks),
            log_processor=dict(by_epoch=False, window_size=1),
            default_hooks=dict(
                logger=dict(interval=1),
                checkpoint=None,
                sanity=dict(locate=locate)),
            visualizer=dict(vis_backends=[dict(type='LocalVisBackend')]),
            randomness=dict(seed=0)))
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def _losses(runner, key='loss'):
    return runner.message_hub.get_scalar(f'train/{key}').data[0]


def _assert_trains(runner, factor=2.0):
    history = _losses(runner)
    assert history[-1] < history[0] / factor, history


BOXES = dict(type='ZooBoxDataset')


def test_seed000_undecoded_head_outputs(tmp_path):
    with pytest.raises(DeadLossError) as err:
        _run(tmp_path / 'broken', dict(type='ZooUndecodedHead'), BOXES)
    message = str(err.value)
    assert message.startswith(
        'loss check at iteration 1: the loss cannot train the model: '
        'loss_bbox = 0 is detached from the graph (no grad_fn); loss_cls = '
        '0 is detached from the graph (no grad_fn); loss_dfl = 0 is '
        'detached from the graph (no grad_fn).')
    assert "'No inf checks were recorded for this optimizer'" in message
    _assert_trains(
        _run(tmp_path / 'fixed', dict(type='ZooUndecodedHead', broken=False),
             BOXES))


def test_seed001_dfl_targets_in_absolute_coordinates(tmp_path):
    with pytest.raises(LossRangeError) as err:
        _run(tmp_path / 'broken', dict(type='ZooDFLHead'), BOXES)
    assert str(err.value).startswith(
        'preflight, iteration 1: loss_dfl = 10 sits at its clamp limit 10 '
        'on the first iteration; it should start near (0.5, 8.0)')
    assert 'stride units' in str(err.value)
    _assert_trains(
        _run(tmp_path / 'fixed', dict(type='ZooDFLHead', broken=False),
             BOXES))


def test_seed002_dropped_label_ids(tmp_path):
    tokens = dict(type='ZooTokenDataset')
    with pytest.raises(BatchContractError) as err:
        _run(tmp_path / 'broken', dict(type='ZooAudioLM'), tokens,
             collate='zoo_signature_filter_collate')
    assert str(err.value) == (
        "preflight, iteration 1: the model requires batch keys "
        "['label_ids', 'label_audio_ids'] but the batch has only "
        "['attention_mask', 'input_ids']: the data pipeline, collate "
        'function or a key filter dropped them before the model')
    runner = _run(tmp_path / 'fixed', dict(type='ZooAudioLM'), tokens)
    _assert_trains(runner, factor=1.5)
    assert _losses(runner, 'loss_audio')[0] > 0


def test_seed002_real_audio_lm_behind_the_trainer_filter(tmp_path):
    from engine_plugins.datasets.audio import make_audio_demo_data
    manifest = make_audio_demo_data(str(tmp_path / 'data'), num_samples=4)
    data = dict(type='AudioChatDataset', manifest=manifest, repeat=40)
    model = dict(
        type='DualFFNAudioLM', audio_out_token_id=260, audio_in_token_id=259)
    with pytest.raises(BatchContractError) as err:
        _run(tmp_path / 'broken', model, data,
             collate='zoo_audio_lm_filter_collate')
    assert str(err.value) == (
        "preflight, iteration 1: the model requires batch keys "
        "['label_ids', 'audio_out_ids', 'label_audio_ids'] but the batch "
        "has only ['attention_mask', 'audio_in_ids', 'audio_in_ids_start', "
        "'audio_out_ids_start', 'input_ids']: the data pipeline, collate "
        'function or a key filter dropped them before the model')
    runner = _run(tmp_path / 'fixed', model, data, iters=20, lr=5e-3,
                  collate='audio_lm_collate')
    _assert_trains(runner, factor=2.0)
    assert _losses(runner, 'loss_audio')[0] > 0
    assert _losses(runner, 'loss_text')[0] > 0


def test_seed003_pixel_boxes_into_normalized_criterion(tmp_path):
    boxes = dict(type='ZooBoxDataset', as_data_samples=True)
    broken = dict(
        type='ZooQueryDetector',
        data_preprocessor=dict(type='ZooDetPreprocessor', convert=False))
    with pytest.raises(TargetFormatError) as err:
        _run(tmp_path / 'broken', broken, boxes, collate='pseudo_collate')
    assert str(err.value) == (
        'preflight, iteration 1: zoo_0.png, instance 0: box [16.0, 24.0, '
        '64.0, 64.0] is not normalized cxcywh in [0, 1]: it looks like '
        'pixel coordinates. The loss expects normalized boxes; convert '
        'once in the data preprocessor')
    _assert_trains(
        _run(tmp_path / 'fixed', dict(type='ZooQueryDetector'), boxes,
             collate='pseudo_collate'))


def test_seed003_background_id_equal_to_num_classes(tmp_path):
    background = dict(type='ZooBoxDataset', as_data_samples=True, label=3)
    with pytest.raises(TargetFormatError) as err:
        _run(tmp_path, dict(type='ZooQueryDetector'), background,
             collate='pseudo_collate')
    # Caught on the CPU side, before the batch reaches the model.
    assert str(err.value) == (
        'data check, iteration 1: zoo_0.png, instance 0: label 3 is outside '
        '[0, 3) (== num_classes: background must be left to the loss, not '
        'encoded as a class index; or the ids are 1-based)')


def test_seed004_bf16_covariance_eigh(tmp_path):
    signals = dict(type='ZooSignalDataset')
    with pytest.raises(NonFiniteGradError) as err:
        _run(tmp_path / 'broken', dict(type='ZooCovarianceNet'), signals,
             amp=True, locate=True)
    # 1 - (0.6, 0.8) . (0, 1)^2 = 0.36, rounded to bf16: 23/64 = 0.3594.
    assert str(err.value).startswith(
        'non-finite gradients at iteration 1 with a finite loss (0.3594); '
        'first NaN/Inf in: X (NaN); backward op: LinalgEighBackward0')
    region = dict(type='FP32LossRegionHook', targets=['loss_by_feat'])
    runner = _run(tmp_path / 'fixed', dict(type='ZooCovarianceNet'),
                  signals, amp=True, hooks=[region], iters=20, lr=0.01)
    _assert_trains(runner, factor=1.5)
    assert FP32LossRegionHook  # the fix is a config line


def test_fresh_leaf_tensor_loss(tmp_path):
    vectors = dict(type='ZooVectorDataset')
    with pytest.raises(DeadLossError) as err:
        _run(tmp_path / 'broken', dict(type='ZooLeafLoss'), vectors)
    assert re.match(
        r'loss check at iteration 1: the loss cannot train the model: '
        r'loss_main = [0-9.]+ is a leaf tensor, not computed from the '
        r'model\.', str(err.value))
    _assert_trains(
        _run(tmp_path / 'fixed', dict(type='ZooLeafLoss', broken=False),
             vectors))
