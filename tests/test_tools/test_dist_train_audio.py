"""The audio quick start under 2-process CPU DDP (tools/dist_train.sh)."""
import os
import subprocess

import pytest
import torch

from engine_plugins.datasets.audio import make_audio_demo_data
from tests.test_tools.test_dist_train import _free_port
from tests.test_tools.test_train import REPO

CONFIG = os.path.join(REPO, 'configs', 'audio', 'dualffn_tiny_lora_cpu.py')


@pytest.mark.slow
def test_lora_ddp_ranks_end_identical(tmp_path):
    manifest = make_audio_demo_data(str(tmp_path / 'data'), num_samples=8)
    config = tmp_path / 'ddp_audio.py'
    config.write_text(
        f'_base_ = [{CONFIG!r}]\n'
        "custom_imports = dict(imports=['tests.toy_task'])\n"
        "custom_hooks = [dict(type='ToyProbeHook')]\n"
        f'train_dataloader = dict(dataset=dict(manifest={manifest!r}))\n'
        'train_cfg = dict(max_iters=4)\n')
    env = dict(os.environ, PORT=str(_free_port()), OMP_NUM_THREADS='1')
    proc = subprocess.run([
        'bash', os.path.join(REPO, 'tools', 'dist_train.sh'), str(config),
        '2', '--work-dir', str(tmp_path / 'work')
    ], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ranks = [
        torch.load(tmp_path / 'work' / f'weights_rank{r}.pth')
        for r in (0, 1)
    ]
    assert [r['world_size'] for r in ranks] == [2, 2]
    lora = [k for k in ranks[0]['state_dict'] if 'lora_' in k]
    assert len(lora) == 2 * 17  # A and B for 8 + 6 + 3 modules
    for key, value in ranks[0]['state_dict'].items():
        torch.testing.assert_close(
            ranks[1]['state_dict'][key], value, rtol=0, atol=0)
    # LoRA B starts at zero; after 4 synchronised steps it is not.
    assert all(ranks[0]['state_dict'][k].abs().sum() > 0 for k in lora
               if 'lora_B' in k)
