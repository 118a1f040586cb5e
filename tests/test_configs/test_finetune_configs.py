"""The fine-tune configs load a checkpoint of other classes through the
Runner's own loading path: the class head starts afresh (and the log says
so), every other tensor is the checkpoint's, anything else that does not
fit is refused; and they train with frozen stages and lr multipliers.

Each config runs on a few demo images (3 classes) from a checkpoint of the
same model with 80 classes (or, for PSALM, with no class side, as
``tools/convert_weights.py ultralytics`` writes).
"""
import copy
import os.path as osp
import uuid

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.registry import init_default_scope

from engine_plugins.datasets import write_demo_shapes
from engine_plugins.engine.checkpoints import CheckpointMismatchError
from engine_plugins.models.yolo.ultralytics_weights import NEW_PREFIXES
from engine_plugins.registry import MODELS
from engine_plugins.utils.config_loading import build_runner
from tests.test_configs.one_iteration import one_iteration_cfg

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PSALM = osp.join(REPO, 'configs', 'psalm_yolo',
                 'psalm_yolo_n_finetune_custom.py')
RTDETR = osp.join(REPO, 'configs', 'rtdetr', 'rtdetr_r50_finetune_custom.py')
DEMO = dict(num_train=4, num_val=2, seed=1)
REINIT = 'class head re-initialized'


def _set_classes(model_cfg, num_classes: int) -> None:
    if model_cfg.type == 'PSALMYOLO':
        model_cfg.fusion.num_classes = num_classes
    else:
        model_cfg.criterion.num_classes = num_classes


def _adapt(cfg):
    _set_classes(cfg.model, 3)  # the demo classes
    for hook in cfg.custom_hooks:
        if hook.type == 'CloseMosaicHook':
            hook.num_last_epochs = 0  # train this iteration with mosaic
    if cfg.model.type == 'RTDETR':
        # 320 px instead of 640: the R50 iteration stays a few seconds.
        train = cfg.train_dataloader.dataset  # FirstSamplesDataset
        for pipeline in (train.dataset.pipeline,
                         cfg.val_dataloader.dataset.pipeline):
            for step in pipeline:
                if step.type == 'Resize':
                    step.scale = (320, 320)
    # No R50 checkpoint files written by the one-iteration run.
    cfg.default_hooks.checkpoint.update(interval=1000, save_last=False)


@pytest.fixture(scope='module')
def demo_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('finetune') / 'shapes') + '/'
    write_demo_shapes(root, **DEMO)
    return root


def finetune_cfg(path, root, work_dir, load_from):
    cfg = one_iteration_cfg(path, root, work_dir, DEMO, _adapt)
    cfg.load_from = load_from
    cfg.test_evaluator.ann_file = cfg.val_evaluator.ann_file
    # One logger (and log file) per run: mmengine reuses a logger by name.
    cfg.experiment_name = f'finetune_{uuid.uuid4().hex[:8]}'
    return cfg


def save_checkpoint(cfg, path, num_classes=80, drop=(), reshape=None):
    """A checkpoint of ``cfg``'s model with ``num_classes`` classes, drawn
    with another seed than the run's model and perturbed; ``drop``: key
    prefixes left out; ``reshape``: a key stored with half its first
    dimension."""
    init_default_scope('engine_plugins')
    model_cfg = copy.deepcopy(cfg.model)
    _set_classes(model_cfg, num_classes)
    torch.manual_seed(1234)
    model = MODELS.build(model_cfg)
    model.init_weights()
    with torch.no_grad():
        # Trained-looking: no zero-initialized BN scale (mmdet's ResNet
        # starts each residual branch's last one at 0, which with frozen
        # BN would keep the branch from ever getting a gradient).
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.02)
    state = {
        k: v.detach().clone()
        for k, v in model.state_dict().items() if not k.startswith(drop)
    }
    if reshape is not None:
        state[reshape] = state[reshape][:state[reshape].shape[0] // 2]
    torch.save(dict(state_dict=state, meta=dict(note='test')), path)
    return state


class _Stop(Exception):
    """Ends a run once the checkpoint is in the model."""


class _Probe(Hook):
    """The model's weights just before the checkpoint is applied (its
    initial ones: this hook runs first) and just after.

    With ``stop``, the initial weights are first shifted by 1: the class
    head keeps its construction values through ``init_weights``, which the
    EMA copy (made before it) has too; shifted, an EMA copy that did not
    load the edited checkpoint shows.
    """

    def __init__(self, stop: bool = True) -> None:
        self.initial = self.loaded = None
        self.stop = stop

    def after_load_checkpoint(self, runner, checkpoint) -> None:
        if self.stop:
            with torch.no_grad():
                for value in runner.model.state_dict().values():
                    if value.is_floating_point():
                        value.add_(1.0)
        self.initial = _snapshot(runner.model)

    def before_train(self, runner) -> None:
        self.loaded = _snapshot(runner.model)
        if self.stop:
            raise _Stop


def _snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _log_lines(runner):
    path = osp.join(runner.log_dir, f'{runner.timestamp}.log')
    with open(path) as f:
        return [line for line in f if REINIT in line]


def _load(cfg, stop=True):
    runner = build_runner(cfg)
    probe = _Probe(stop)
    runner.register_hook(probe, priority='HIGHEST')
    if stop:
        with pytest.raises(_Stop):
            runner.train()
    else:
        runner.train()
    return runner, probe


def _class_head(runner):
    return runner.model.class_head_prefixes


def _ema_state(runner):
    ema = [h for h in runner.hooks if type(h).__name__ == 'EMAHook']
    assert len(ema) == 1
    return ema[0].ema_model.module.state_dict()


@pytest.mark.parametrize('path', [PSALM, RTDETR], ids=['psalm', 'rtdetr'])
def test_other_classes_reinitialize_only_the_class_head(
        path, demo_root, tmp_path):
    ckpt_file = str(tmp_path / 'coco80.pth')
    cfg = finetune_cfg(path, demo_root, str(tmp_path / 'work'), ckpt_file)
    ckpt = save_checkpoint(cfg, ckpt_file, num_classes=80)
    runner, probe = _load(cfg)

    head = _class_head(runner)
    model_state = probe.loaded
    # What must start afresh: the class-head entries of another shape.
    expected = sorted(
        k for k in model_state
        if k.startswith(head) and ckpt[k].shape != (model_state[k].shape))
    assert runner.model.class_count_key in expected
    if runner.cfg.model.type == 'PSALMYOLO':
        # n size: the prototype branch is max(64, min(K, 100)) wide.
        assert 'bbox_head.proto_branches.0.0.conv.weight' in expected
    for name, value in model_state.items():
        if name in expected:
            # the model's own initial value, not the checkpoint's
            assert torch.equal(value, probe.initial[name]), name
        else:
            assert torch.equal(value, ckpt[name]), name
    # EMAHook loaded the same edited checkpoint.
    ema = _ema_state(runner)
    for name in expected:
        assert torch.equal(ema[name], model_state[name]), name

    lines = _log_lines(runner)
    assert len(lines) == 1, lines
    line = lines[0]
    print(line)
    assert f'load_from {ckpt_file}: {REINIT} (checkpoint 80 classes, ' \
        'model 3)' in line
    assert f': {len(expected)} tensors ({len(expected)} of another shape)' \
        in line
    assert f'; {len(model_state) - len(expected)} tensors loaded' in line


def test_psalm_loads_converted_ultralytics_weights(demo_root, tmp_path):
    """The converter writes no class side (``NEW_PREFIXES``): all of it
    starts afresh, everything else is loaded."""
    ckpt_file = str(tmp_path / 'yolov8n_psalm.pth')
    cfg = finetune_cfg(PSALM, demo_root, str(tmp_path / 'work'), ckpt_file)
    ckpt = save_checkpoint(cfg, ckpt_file, drop=NEW_PREFIXES)
    runner, probe = _load(cfg)
    new = [k for k in probe.loaded if k.startswith(NEW_PREFIXES)]
    assert new and len(new) + len(ckpt) == len(probe.loaded)
    for name, value in probe.loaded.items():
        expected = probe.initial[name] if name in new else ckpt[name]
        assert torch.equal(value, expected), name
    line, = _log_lines(runner)
    assert (f'{REINIT} (checkpoint without a class head, model 3 '
            f'classes): {len(new)} tensors ({len(new)} not in the '
            f'checkpoint)') in line
    assert f'; {len(ckpt)} tensors loaded' in line


def test_same_classes_load_everything(demo_root, tmp_path):
    ckpt_file = str(tmp_path / 'three.pth')
    cfg = finetune_cfg(PSALM, demo_root, str(tmp_path / 'work'), ckpt_file)
    ckpt = save_checkpoint(cfg, ckpt_file, num_classes=3)
    runner, probe = _load(cfg)
    for name, value in probe.loaded.items():
        assert torch.equal(value, ckpt[name]), name
    assert _log_lines(runner) == []


@pytest.mark.parametrize(
    'path, key', [(PSALM, 'backbone.stages.1.0.conv.weight'),
                  (RTDETR, 'encoder.input_proj.0.conv.weight')],
    ids=['psalm', 'rtdetr'])
def test_a_mismatch_outside_the_class_head_is_refused(path, key, demo_root,
                                                      tmp_path):
    ckpt_file = str(tmp_path / 'other.pth')
    cfg = finetune_cfg(path, demo_root, str(tmp_path / 'work'), ckpt_file)
    ckpt = save_checkpoint(cfg, ckpt_file, num_classes=80, reshape=key)
    runner = build_runner(cfg)
    model_shape = tuple(runner.model.state_dict()[key].shape)
    with pytest.raises(CheckpointMismatchError) as info:
        runner.train()
    message = str(info.value)
    assert key in message
    assert str(tuple(ckpt[key].shape)) in message
    assert str(model_shape) in message
    assert 'outside the class head' in message


def test_a_missing_key_outside_the_class_head_is_refused(demo_root, tmp_path):
    ckpt_file = str(tmp_path / 'partial.pth')
    cfg = finetune_cfg(PSALM, demo_root, str(tmp_path / 'work'), ckpt_file)
    save_checkpoint(cfg, ckpt_file, drop=('neck.', ))
    with pytest.raises(
            CheckpointMismatchError,
            match='missing from the '
            r'checkpoint: neck\.'):
        build_runner(cfg).train()


def test_evaluation_does_not_reinitialize(demo_root, tmp_path):
    """tools/test.py with a checkpoint of other classes would score an
    untrained class head: refused as without the hook."""
    ckpt_file = str(tmp_path / 'coco80.pth')
    cfg = finetune_cfg(PSALM, demo_root, str(tmp_path / 'work'), ckpt_file)
    save_checkpoint(cfg, ckpt_file, num_classes=80)
    with pytest.raises(
            CheckpointMismatchError, match='fusion.base_prototypes'):
        build_runner(cfg).test()


def _group_of(optimizer, param):
    groups = [
        g for g in optimizer.param_groups
        if any(p is param for p in g['params'])
    ]
    assert len(groups) == 1
    return groups[0]


@pytest.mark.parametrize(
    'path', [PSALM, pytest.param(RTDETR, marks=pytest.mark.slow)],
    ids=['psalm', 'rtdetr'])
def test_finetune_trains_with_frozen_stages_and_lr_mults(
        path, demo_root, tmp_path):
    ckpt_file = str(tmp_path / 'coco80.pth')
    cfg = finetune_cfg(path, demo_root, str(tmp_path / 'work'), ckpt_file)
    ckpt = save_checkpoint(cfg, ckpt_file, num_classes=80)
    runner, probe = _load(cfg, stop=False)
    model = runner.model
    params = dict(model.named_parameters())
    after = _snapshot(model)
    base_lr = cfg.optim_wrapper.optimizer.lr
    optimizer = runner.optim_wrapper.optimizer
    if cfg.model.type == 'PSALMYOLO':
        frozen = ('backbone.stem.', 'backbone.stages.0.')
        trained = 'backbone.stages.1.0.conv.weight'
        mults = {trained: 1.0, 'neck.top_down.0.main_conv.conv.weight': 1.0}
        frozen_bn = model.backbone.stem.bn
        trained_bn = model.backbone.stages[1][0].bn
    else:
        frozen = ('backbone.stem.', 'backbone.layer1.')
        trained = 'backbone.layer2.0.conv1.weight'
        mults = {
            trained: cfg.backbone_lr_mult,
            'backbone.layer4.2.conv3.weight': cfg.backbone_lr_mult,
            'decoder.score_heads.0.weight': 1.0,
            'encoder.input_proj.0.conv.weight': 1.0,
        }
        frozen_bn = model.backbone.layer1[0].bn1
        trained_bn = model.encoder.input_proj[0].bn
    assert cfg.model.backbone.frozen_stages == 1
    frozen_names = [n for n in params if n.startswith(frozen)]
    assert frozen_names
    for name in frozen_names:
        assert not params[name].requires_grad, name
        assert torch.equal(after[name], ckpt[name]), name
    model.train()  # the run ended in validation (eval mode)
    assert not frozen_bn.training and trained_bn.training
    # The step reached the trainable stages (a momentum from their
    # gradient; an RT-DETR backbone step at 0.1x the first warm-up lr is
    # below float32 resolution) and changed the model; frozen ones got no
    # optimizer state.
    assert params[trained].requires_grad
    state = optimizer.state[params[trained]]
    moment = state.get('exp_avg', state.get('momentum_buffer'))
    assert moment is not None and moment.abs().sum() > 0
    assert all(not optimizer.state.get(params[n]) for n in frozen_names)
    assert any(not torch.equal(after[n], ckpt[n]) for n in params
               if params[n].requires_grad)
    for name, mult in mults.items():
        group = _group_of(optimizer, params[name])
        assert group['initial_lr'] == pytest.approx(base_lr * mult), name
    loss = runner.message_hub.get_scalar('train/loss').current()
    assert torch.isfinite(torch.tensor(loss)) and loss > 0
    assert len(_log_lines(runner)) == 1
    assert 'val/coco/bbox_mAP_50' in runner.message_hub.log_scalars
