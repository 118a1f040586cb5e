"""The TAL and matching benchmarks, run as a user runs them, on their
smallest cases, against the ultralytics reference."""
import pytest

from tests.reference_ultralytics import ultralytics_version
from tests.tool_loading import run_script

pytestmark = pytest.mark.skipif(
    ultralytics_version() is None,
    reason='ultralytics (optional oracle) is not installed')


def _run(*args):
    return run_script(*args, timeout=300).stdout.splitlines()


def test_bench_tal_rows_are_identical_to_ultralytics():
    lines = _run('benchmarks/bench_tal.py', '--repeats', '1', '--batches', '2',
                 '--gts', '0', '5', '--levels', 'P3-P5')
    assert 'torch threads 1' in lines[0] and 'ultralytics 8.2.103' in lines[0]
    rows = [line.split() for line in lines[3:5]]
    assert [row[:3] for row in rows] == [['P3-P5', '2', '0'],
                                         ['P3-P5', '2', '5']]
    assert rows[0][3] == '0' and int(rows[1][3]) > 0  # positives
    assert all(row[-1] == 'True' for row in rows)
    assert lines[-1] == 'all identical'


def test_bench_matching_equals_mmdet():
    lines = _run('benchmarks/bench_matching.py', '--repeats', '1', '--gts',
                 '10')
    assert 'scipy' in lines[0] and 'ultralytics 8.2.103' in lines[0]
    row = lines[3].split()
    assert row[0] == '10' and row[-2:] == ['True,', 'True']
    assert row[-3] == '100.0%'  # ultralytics agrees on this case
