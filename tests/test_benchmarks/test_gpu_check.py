"""The GPU check as it will be run, through its shell wrapper: the dry run
on CPU goes through every step of the GPU run, and a device that cannot run
the check is refused with the reason."""
import json
import os.path as osp
import subprocess

import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(REPO, 'benchmarks', 'gpu_check.sh')
STEPS = ('yolo_train', 'rtdetr_train', 'bench_tal', 'bench_matching',
         'msda_fp16', 'audio_3b_step', 'ris_fp16')
TRAINING = ('yolo_train', 'rtdetr_train', 'audio_3b_step', 'ris_fp16')


def _check(*args: str, timeout: int = 60) -> subprocess.CompletedProcess:
    return subprocess.run(['bash', SCRIPT, *args],
                          cwd=REPO,
                          capture_output=True,
                          text=True,
                          timeout=timeout)


@pytest.mark.skipif(torch.cuda.is_available(), reason='CUDA is available')
@pytest.mark.parametrize('args, message', [
    (('--device', 'cuda'), 'CUDA is not available'),
    (('--device', 'cpu'), 'the full check needs CUDA'),
])
def test_refuses_a_device_that_cannot_run_it(args, message, tmp_path):
    result = _check(*args, '--out', str(tmp_path / 'out.json'))
    assert result.returncode == 2
    assert message in result.stderr
    assert not (tmp_path / 'out.json').exists()


@pytest.mark.slow
def test_dry_run_goes_through_every_step(tmp_path):
    out = tmp_path / 'gpu_check.json'
    result = _check(
        '--device', 'cpu', '--dry-run', '--out', str(out), timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    table = result.stdout
    assert 'versions: torch' in table and 'threads: ' in table
    rows = {row['step']: row for row in json.loads(out.read_text())['rows']}
    assert set(rows) == set(STEPS)
    for step in STEPS:
        assert f'| {step} |' in table, step
        assert rows[step]['status'] in ('PASS', 'WARN'), rows[step]
        assert rows[step]['elapsed_s'] > 0
    for step in TRAINING:
        assert rows[step]['finite'] is True, rows[step]
        assert rows[step]['verdict'].startswith('sanity: '), rows[step]
        assert rows[step]['iterations'] >= 3
    for step in ('bench_tal', 'bench_matching'):
        assert rows[step]['output'], rows[step]
    # No compiled CPU kernel: the PyTorch path in fp32 against float64.
    msda = rows['msda_fp16']
    assert msda['setting'].startswith('float32')
    assert msda['max_abs_diff'] < 1e-4
