"""tools/plot_ris_rmse.py: reads the metric's keys and draws a PNG."""
import json
import os.path as osp

import matplotlib.image as mpimg
import pytest

from tests.tool_loading import load_tool

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
plot_tool = load_tool('plot_ris_rmse')

METRICS = {
    'ris/rmse_network@-10dB': 2.0,
    'ris/rmse_music@-10dB': 3.0,
    'ris/rmse_sqrt_crb@-10dB': 0.5,
    'ris/rmse_network@10dB': 0.2,
    'ris/rmse_music@10dB': 0.1,
    'ris/rmse_sqrt_crb@10dB': 0.05,
    'ris/rmse_network': 1.0,  # overall: not a point on the curves
    'ris/val_loss': 0.3,
}


def test_bench_output_to_png(tmp_path):
    results = tmp_path / 'rmse.json'
    results.write_text(json.dumps(dict(iters=10, metrics=METRICS)))
    out = tmp_path / 'rmse.png'
    plot_tool.main([str(results), '--out', str(out)])
    image = mpimg.imread(str(out))
    assert image.shape[:2] == (480, 720)  # 6x4 in at 120 dpi
    curves = plot_tool.load_curves(str(results))
    assert curves == dict(
        network={-10.0: 2.0, 10.0: 0.2},
        music={-10.0: 3.0, 10.0: 0.1},
        sqrt_crb={-10.0: 0.5, 10.0: 0.05})


def test_json_lines_use_the_last_record_with_rmse(tmp_path):
    lines = [
        dict(loss=1.0, iter=1),
        {'ris/rmse_music@0dB': 9.0},
        {'ris/rmse_music@0dB': 1.5, 'step': 2},
        dict(loss=0.5, iter=3),
    ]
    path = tmp_path / 'scalars.json'
    path.write_text('\n'.join(json.dumps(x) for x in lines))
    assert plot_tool.load_curves(str(path)) == dict(music={0.0: 1.5})


def test_file_without_rmse_keys_is_named(tmp_path):
    path = tmp_path / 'other.json'
    path.write_text(json.dumps(dict(loss=1.0)))
    with pytest.raises(ValueError, match=f'{path} has no RMSE-per-SNR'):
        plot_tool.load_curves(str(path))
    path.write_text('{not json')
    with pytest.raises(ValueError, match='neither JSON nor JSON lines'):
        plot_tool.load_curves(str(path))
