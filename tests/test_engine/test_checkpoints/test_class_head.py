"""reinit_class_head: what a checkpoint of other classes gives up (only
class-head entries that do not fit), and the models' class-head
declarations (every entry whose shape follows the class count)."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from engine_plugins.engine.checkpoints import (ClassHead, compact_names,
                                               reinit_class_head)
from engine_plugins.models.yolo.ultralytics_weights import NEW_PREFIXES
from engine_plugins.registry import MODELS

REPO = osp.dirname(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
HEAD = ClassHead(('head.cls.', 'head.embed'), 'head.cls.bias')


def _state(classes: int, width: int = 4):
    return {
        'body.weight': torch.full((width, 2), 1.0),
        'head.cls.weight': torch.full((classes, width), 2.0),
        'head.cls.bias': torch.full((classes, ), 3.0),
        'head.embed': torch.full((classes + 1, width), 4.0),
        'head.scale': torch.full((1, ), 5.0),  # class-free, kept
    }


def test_other_classes_replace_only_class_head_entries_of_another_shape():
    model = {k: v * 10 for k, v in _state(3).items()}
    checkpoint = dict(state_dict=_state(80), meta={})
    result = reinit_class_head(checkpoint, model, HEAD)
    state = checkpoint['state_dict']
    assert (result.checkpoint_classes, result.model_classes) == (80, 3)
    assert result.reinitialized == [
        'head.cls.weight', 'head.cls.bias', 'head.embed'
    ]
    assert result.missing == [] and result.loaded == 2 and result.total == 5
    for name in result.reinitialized:
        assert torch.equal(state[name], model[name])
        assert state[name] is not model[name]  # a copy
    assert torch.equal(state['body.weight'], _state(80)['body.weight'])
    assert torch.equal(state['head.scale'], _state(80)['head.scale'])
    assert result.describe('ckpt.pth') == (
        'load_from ckpt.pth: class head re-initialized (checkpoint 80 '
        'classes, model 3): 3 tensors (3 of another shape) '
        '[head.cls.{weight,bias}, head.embed]; 2 tensors loaded')


def test_same_classes_change_nothing_even_where_a_shape_differs():
    checkpoint = _state(3, width=8)  # a bare state dict
    before = copy.deepcopy(checkpoint)
    result = reinit_class_head(checkpoint, _state(3), HEAD)
    assert result.reinitialized == [] and result.loaded == 5
    assert all(torch.equal(checkpoint[k], before[k]) for k in before)


def test_a_checkpoint_without_class_head_gets_the_model_s():
    model = _state(3)
    checkpoint = dict(state_dict={'body.weight': _state(80)['body.weight']})
    result = reinit_class_head(checkpoint, model, HEAD)
    assert result.checkpoint_classes is None
    assert result.missing == ['head.cls.weight', 'head.cls.bias', 'head.embed']
    # head.scale is outside the declared prefixes: still missing, for the
    # strict check to refuse.
    assert 'head.scale' not in checkpoint['state_dict']
    assert 'checkpoint without a class head, model 3 classes' in \
        result.describe('x')


def test_ddp_prefixed_keys_are_replaced_in_place():
    checkpoint = dict(state_dict={
        f'module.{k}': v
        for k, v in _state(80).items()
    })
    model = _state(3)
    reinit_class_head(checkpoint, model, HEAD)
    state = checkpoint['state_dict']
    assert set(state) == {f'module.{k}' for k in model}
    assert torch.equal(state['module.head.cls.bias'], model['head.cls.bias'])


def test_compact_names():
    assert compact_names(['a.b.weight', 'a.b.bias', 'c', 'a.d.x']) == \
        'a.b.{weight,bias}, c, a.d.x'
    heads = [f'heads.{i}.{leaf}' for i in range(6) for leaf in ('w', 'b')]
    assert compact_names(['q.w', *heads, 'e.w']) == \
        'q.w, heads.{0-5}.{w,b}, e.w'
    assert compact_names(['p.0.1.w', 'p.2.1.w', 'p.2.1.b', 'x.1.y']) == \
        'p.0.1.w, p.2.1.{w,b}, x.1.y'


class _Undeclared(torch.nn.Module):
    pass


def test_a_model_without_declaration_is_named():
    with pytest.raises(
            ValueError, match='_Undeclared declares no class '
            'head'):
        ClassHead.of(_Undeclared())
    head = ClassHead.of(_Undeclared(), ['x.'], 'x.bias')
    assert head == ClassHead(('x.', ), 'x.bias')
    with pytest.raises(ValueError, match='class_count_key'):
        head.check({'y.bias': torch.zeros(1)}, 'M')
    with pytest.raises(ValueError, match='no state-dict entry'):
        ClassHead(('x.', ), 'y.bias').check({'y.bias': torch.zeros(1)}, 'M')


def _model(config: str, num_classes: int):
    init_default_scope('engine_plugins')
    cfg = copy.deepcopy(Config.fromfile(osp.join(REPO, 'configs', config)))
    if cfg.model.type == 'PSALMYOLO':
        cfg.model.fusion.num_classes = num_classes
    else:
        cfg.model.criterion.num_classes = num_classes
        cfg.model.backbone.init_cfg = None
    return MODELS.build(cfg.model)


@pytest.mark.parametrize('config', [
    'psalm_yolo/psalm_yolo_n_shapes_cpu.py',
    'psalm_yolo/psalm_yolo_n_finetune_custom.py',
    'rtdetr/rtdetr_r18_shapes_cpu.py',
])
def test_declared_class_head_holds_every_class_dependent_entry(config):
    """Entries whose shape changes with the class count are exactly the
    class head's (PSALM's head also holds class-side entries of a fixed
    shape); the count entry gives the class count."""
    small, large = _model(config, 3), _model(config, 80)
    head = ClassHead.of(small)
    small_state, large_state = small.state_dict(), large.state_dict()
    head.check(small_state, config)
    assert list(small_state) == list(large_state)
    changed = [
        k for k in small_state if small_state[k].shape != large_state[k].shape
    ]
    assert changed and all(k in head for k in changed), changed
    assert small_state[head.count_key].shape[0] == 3
    assert large_state[head.count_key].shape[0] == 80
    if small.__class__.__name__ == 'RTDETR':
        assert sorted(changed) == sorted(k for k in small_state if k in head)


def test_psalm_class_head_is_what_yolov8_weights_lack():
    from engine_plugins.models.yolo import PSALMYOLO
    assert PSALMYOLO.class_head_prefixes == NEW_PREFIXES
