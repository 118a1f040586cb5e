"""tools/convert_weights.py hf-rtdetr end to end: the printed command
builds a model that loads the checkpoint strictly and computes what
transformers computes (the numerical checks of the mapping are in
tests/test_models/test_rtdetr/test_hf_weights.py)."""
import argparse
import shlex

import pytest
import torch
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader

from engine_plugins.registry import MODELS
from tests.test_models.test_rtdetr import test_hf_weights as oracle
from tests.tool_loading import load_tool

pytest.importorskip('transformers')


@pytest.fixture(scope='module')
def r18_folder(tmp_path_factory):
    model = oracle.hf_model(oracle.r18vd_config())
    folder = str(tmp_path_factory.mktemp('hf') / 'rtdetr_r18vd')
    model.save_pretrained(folder)
    return folder, model


def _run(argv, capsys):
    code = load_tool('convert_weights').main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _suggested(stdout: str):
    """(config, --non-strict given, cfg options) of the printed command."""
    line = next(line for line in stdout.splitlines()
                if line.startswith('train or test with it'))
    words = shlex.split(line.split(': ', 1)[1])
    assert words[:2] == ['python', 'tools/train.py']
    parser = argparse.ArgumentParser()
    parser.add_argument('config')
    parser.add_argument('--non-strict', action='store_true')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args(words[2:])
    return args.config, args.non_strict, args.cfg_options


def test_converts_and_the_printed_command_reproduces_transformers(
        tmp_path, capsys, r18_folder, one_torch_thread):
    folder, hf = r18_folder
    out = tmp_path / 'rtdetr_r18vd.pth'
    code, stdout, _ = _run(['hf-rtdetr', folder, str(out)], capsys)
    assert code == 0
    assert 'RT-DETR r18vd (basic blocks' in stdout
    assert ('converted: 510 from 526 transformers tensors (backbone 115, '
            'encoder 270') in stdout
    assert 'filled (BN num_batches_tracked = 0, not in the weights): 23 ' \
        '(backbone 23)' in stdout
    assert 'new (left at init): 0' in stdout
    assert 'dropped: 0' in stdout
    assert 'model.encoder.pe_order=hw' in stdout

    checkpoint = CheckpointLoader.load_checkpoint(str(out), 'cpu')
    meta = checkpoint['meta']
    assert meta['converted_from'] == 'transformers RTDetrForObjectDetection'
    assert meta['arch'] == 'r18vd'
    assert meta['cfg_options']['model.backbone.type'] == 'ResNetVd'
    assert len(meta['source_classes']) == 7
    assert 'integrity' in meta

    finetune = next(line for line in stdout.splitlines()
                    if line.startswith('fine-tune on your own classes'))
    assert 'tools/train.py configs/rtdetr/rtdetr_r50_finetune_custom.py' \
        in finetune and 'num_classes' not in finetune
    config, non_strict, options = _suggested(stdout)
    assert not non_strict
    assert options.pop('load_from') == str(out)
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(options)
    init_default_scope('engine_plugins')
    ours = MODELS.build(cfg.model)
    load_checkpoint(ours, str(out), strict=True)
    ours.eval()
    result = oracle.run_both(hf, ours, oracle.image_batch(1, 256, 256),
                             torch.float64)
    oracle.assert_close_pairs(result['pairs'], oracle.TOL64, relative=False)


def test_num_classes_drops_the_class_layers(tmp_path, capsys, r18_folder):
    folder, _ = r18_folder
    out = tmp_path / 'three.pth'
    code, stdout, _ = _run(
        ['hf-rtdetr', folder,
         str(out), '--num-classes', '3'], capsys)
    assert code == 0
    assert 'new (left at init): 9' in stdout
    assert ('dropped: 9 (model.decoder 6, model.denoising_class_embed 1, '
            'model.enc_score_head 2)') in stdout
    config, non_strict, options = _suggested(stdout)
    assert non_strict
    meta = CheckpointLoader.load_checkpoint(str(out), 'cpu')['meta']
    assert meta['cfg_options']['model.criterion.num_classes'] == 3
    assert len(meta['new_keys']) == 9


def test_refusals_exit_2_with_the_reason(tmp_path, capsys, r18_folder):
    folder, _ = r18_folder
    code, _, err = _run(
        ['hf-rtdetr', str(tmp_path),
         str(tmp_path / 'x.pth')], capsys)
    assert code == 2 and 'no config.json' in err

    code, _, err = _run([
        'hf-rtdetr', folder,
        str(tmp_path / 'x.pth'), '--config',
        'configs/rtdetr/rtdetr_r18_coco.py'
    ], capsys)
    assert code == 2
    assert 'does not build the model of the weights' in err
    assert 'model.backbone.type=ResNetVd' in err
    assert 'model.encoder.pe_order=hw' in err
    assert not (tmp_path / 'x.pth').exists()
