"""tools/test.py: evaluate a checkpoint and dump predictions."""
import pickle

import pytest

from tests.test_tools.test_train import TOY_CONFIG, _train
from tests.tool_loading import load_tool

test_tool = load_tool('test')


@pytest.mark.slow
def test_test_tool_evaluates_and_dumps(tmp_path):
    _train(tmp_path, '--cfg-options', 'train_cfg.max_iters=4')
    out = tmp_path / 'preds.pkl'
    metrics = test_tool.main([
        TOY_CONFIG,
        str(tmp_path / 'iter_4.pth'), '--work-dir',
        str(tmp_path / 'test'), '--out',
        str(out)
    ])
    with open(out, 'rb') as f:
        preds = pickle.load(f)
    # The toy test set has 32 samples; the metric is their mean squared
    # error, recomputed here from the dumped predictions.
    assert len(preds) == 32
    mse = sum((float(p['pred']) - float(p['target']))**2 for p in preds) / 32
    assert metrics['toy/mse'] == pytest.approx(mse, rel=1e-5)


def test_test_tool_errors_name_the_input(tmp_path):
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        test_tool.build_cfg(
            test_tool.parse_args([TOY_CONFIG,
                                  str(tmp_path / 'missing.pth')]))
    ckpt = tmp_path / 'c.pth'
    ckpt.write_bytes(b'')
    with pytest.raises(ValueError, match='.pkl'):
        test_tool.build_cfg(
            test_tool.parse_args([TOY_CONFIG,
                                  str(ckpt), '--out', 'x.json']))
    with pytest.raises(ValueError, match='visualization'):
        test_tool.build_cfg(
            test_tool.parse_args(
                [TOY_CONFIG,
                 str(ckpt), '--show-dir',
                 str(tmp_path)]))


def test_test_tool_lists_the_missing_test_set_and_checkpoint(
        tmp_path, monkeypatch, capsys):
    import os.path as osp

    from tests.test_tools.test_train import REPO
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        test_tool.main([
            osp.join(REPO, 'configs', 'rtdetr', 'rtdetr_r18_coco.py'),
            'gone.pth'
        ])
    assert info.value.code == 2
    err = capsys.readouterr().err
    for text in [
            'data/coco/annotations/instances_val2017.json  [file]',
            'test_dataloader.dataset.data_root', 'test_evaluator.ann_file',
            'gone.pth  [file]\n      set by CHECKPOINT',
            'download_coco.sh --no-train data/coco',
            'configs/rtdetr/rtdetr_r18_shapes_cpu.py'
    ]:
        assert text in err, text
    # The train split is not read by a test.
    assert 'train2017/  [folder]' not in err
