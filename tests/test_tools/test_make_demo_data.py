"""tools/make_demo_data.py writes the data once and names a conflict."""
import json
import os.path as osp

from tests.tool_loading import load_tool

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
make_demo_data = load_tool('make_demo_data')


def test_writes_then_refuses_other_settings(tmp_path, capsys):
    root = str(tmp_path / 'shapes')
    assert make_demo_data.main([root, '--num-train', '3', '--num-val',
                                '1']) == 0
    with open(f'{root}/annotations/train.json') as f:
        assert len(json.load(f)['images']) == 3
    assert make_demo_data.main([root, '--num-train', '4']) == 2
    assert 'written with other settings' in capsys.readouterr().err
