"""The COCO evaluation benchmark, run as a user runs it, on 20 images."""
from tests.tool_loading import run_script


def test_prints_the_table_and_the_stats_are_identical():
    proc = run_script(
        'benchmarks/bench_coco_eval.py',
        '--images',
        '20',
        '--repeats',
        '1',
        timeout=300)
    lines = proc.stdout.splitlines()
    assert 'faster-coco-eval 1.' in lines[0] and 'pycocotools' in lines[0]
    assert lines[1].startswith('OMP_NUM_THREADS=1, 20 images')
    rows = {line[:34].strip(): line.split() for line in lines[3:7]}
    assert rows['mmdet CocoMetric (pycocotools)'][-1] == 'reference'
    for name in ('FastCocoMetric faster_coco_eval',
                 'FastCocoMetric pycocotools'):
        assert rows[name][-1] == 'True', proc.stdout
        assert float(rows[name][-4]) > 0  # seconds
    assert 'faster-coco-eval alone' in rows
    assert lines[-1] == 'FastCocoMetric stats identical'
