"""tools/convert_weights.py: the ultralytics subcommand end to end (the
numerical checks of the conversion are in
tests/test_models/test_yolo/test_ultralytics_weights.py)."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader

from engine_plugins.engine.checkpoints import KeyMatch
from engine_plugins.registry import MODELS
from tests.reference_ultralytics import import_ultralytics
from tests.tool_loading import REPO, load_tool

P3P5_CONFIG = osp.join(REPO, 'configs', 'psalm_yolo',
                       'psalm_yolo_n_p3-p5_coco.py')


@pytest.fixture(scope='module')
def yolov8n():
    """ultralytics' yolov8n (P3-P5), random weights, built from its YAML."""
    modules = import_ultralytics('ultralytics.nn.tasks')
    if modules is None:
        pytest.skip('ultralytics (optional oracle) is not installed')
    import yaml
    tasks = modules[0]
    path = osp.join(
        osp.dirname(osp.dirname(tasks.__file__)), 'cfg', 'models', 'v8',
        'yolov8.yaml')
    with open(path) as f:
        cfg = yaml.safe_load(f)
    cfg['scale'] = 'n'
    torch.manual_seed(0)
    return tasks.DetectionModel(cfg, verbose=False)


def _run(argv, capsys):
    code = load_tool('convert_weights').main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_a_state_dict_converts_and_loads_as_load_from(tmp_path, capsys,
                                                      yolov8n):
    src, out = tmp_path / 'yolov8n_state.pth', tmp_path / 'psalm.pth'
    torch.save(yolov8n.state_dict(), src)
    code, stdout, _ = _run(['ultralytics', str(src), str(out)], capsys)
    assert code == 0
    assert 'yolov8n (depth 0.33, width 0.25, max_channels 1024), P3-P5' \
        in stdout
    assert 'fits configs/psalm_yolo/psalm_yolo_n_p3-p5_coco.py' in stdout
    assert ('converted: 312 (backbone 162, neck 108, '
            'bbox_head.box_branches 42)') in stdout
    assert 'new (left at init): 59' in stdout
    assert 'dropped: 43 (model.22.cv3 42, model.22.dfl 1)' in stdout
    # The fine-tune config of that size loads it strictly (its
    # ReinitClassHeadHook starts the class side afresh).
    assert ('fine-tune with: python tools/train.py '
            'configs/psalm_yolo/psalm_yolo_n_finetune_custom.py '
            f'--cfg-options load_from={out} (ReinitClassHeadHook') in stdout
    assert 'a config without that hook needs --non-strict' in stdout

    # The loader load_from uses: weights-only, checksums verified.
    checkpoint = CheckpointLoader.load_checkpoint(str(out), 'cpu')
    meta = checkpoint['meta']
    assert meta['size'] == 'n' and meta['source_format'] == 'state dict'
    assert meta['cfg_options']['model.backbone.out_indices'] == (2, 3, 4)
    assert 'integrity' in meta

    init_default_scope('engine_plugins')
    model = MODELS.build(Config.fromfile(P3P5_CONFIG).model)
    match = KeyMatch(checkpoint['state_dict'], model.state_dict())
    assert not match.unexpected and not match.shape_mismatch
    assert match.missing == meta['new_keys']
    load_checkpoint(model, str(out), strict=False)
    torch.testing.assert_close(model.backbone.stem.conv.weight,
                               yolov8n.state_dict()['model.0.conv.weight'])
    torch.testing.assert_close(model.bbox_head.box_branches[2][2].bias,
                               yolov8n.state_dict()['model.22.cv2.2.2.bias'])


def test_a_pickled_model_needs_trust(tmp_path, capsys, yolov8n):
    # An ultralytics release: the (EMA) model pickled in half precision.
    src, out = tmp_path / 'yolov8n.pt', tmp_path / 'psalm.pth'
    model = yolov8n.__class__(yolov8n.yaml, verbose=False)
    model.load_state_dict(yolov8n.state_dict())
    torch.save(dict(model=model.half(), ema=None, version='8.2.103'), src)

    code, _, err = _run(['ultralytics', str(src), str(out)], capsys)
    assert code == 2 and not out.exists()
    assert 'pickles ultralytics.nn.tasks.DetectionModel' in err
    assert '--trust-pickle' in err

    code, _, _ = _run(
        ['ultralytics', str(src),
         str(out), '--trust-pickle'], capsys)
    assert code == 0
    checkpoint = torch.load(out, weights_only=True)
    assert checkpoint['meta']['source_format'] == 'pickled ultralytics model'
    assert checkpoint['meta']['source_ultralytics_version'] == '8.2.103'
    weight = checkpoint['state_dict']['backbone.stem.conv.weight']
    assert weight.dtype == torch.float32
    torch.testing.assert_close(
        weight,
        yolov8n.state_dict()['model.0.conv.weight'].half().float())


def test_a_config_of_another_layout_is_refused(tmp_path, capsys, yolov8n):
    src = tmp_path / 'yolov8n_state.pth'
    torch.save(yolov8n.state_dict(), src)
    p2_config = osp.join(REPO, 'configs', 'psalm_yolo', 'psalm_yolo_n_coco.py')
    argv = [
        'ultralytics',
        str(src),
        str(tmp_path / 'out.pth'), '--config', p2_config
    ]
    code, _, err = _run(argv, capsys)
    assert code == 2
    assert 'add --cfg-options model.backbone.out_indices="(2,3,4)"' in err
    code, _, _ = _run(
        argv + ['--cfg-options', 'model.backbone.out_indices=(2,3,4)'], capsys)
    assert code == 0


def test_a_source_is_required(capsys):
    with pytest.raises(SystemExit) as info:
        load_tool('convert_weights').parse_args([])
    assert info.value.code == 2
    assert 'SOURCE' in capsys.readouterr().err
