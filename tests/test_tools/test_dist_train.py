"""2-process CPU DDP through tools/dist_train.sh (torchrun + the pytorch
launcher), the same path multi-GPU runs take."""
import os
import socket
import subprocess

import pytest
import torch

from tests.test_tools.test_train import REPO, TOY_CONFIG


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_process_cpu_ddp_ends_with_identical_weights(tmp_path):
    env = dict(os.environ, PORT=str(_free_port()), OMP_NUM_THREADS='1')
    proc = subprocess.run([
        'bash',
        os.path.join(REPO, 'tools', 'dist_train.sh'), TOY_CONFIG, '2',
        '--work-dir',
        str(tmp_path)
    ],
                          cwd=tmp_path,
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ranks = [torch.load(tmp_path / f'weights_rank{r}.pth') for r in (0, 1)]
    for record in ranks:
        assert record['world_size'] == 2
        assert record['iter'] == 8
    for key, value in ranks[0]['state_dict'].items():
        torch.testing.assert_close(
            ranks[1]['state_dict'][key], value, rtol=0, atol=0)
    # The run trained: weights moved from their initialisation.
    assert (tmp_path / 'iter_8.pth').is_file()
    init = torch.load(tmp_path / 'iter_4.pth')['state_dict']
    assert not torch.equal(init['net.0.weight'],
                           ranks[0]['state_dict']['net.0.weight'])
