"""The sanity engine under MMDistributedDataParallel: 2 CPU processes
(gloo) through tools/dist_train.sh, the path multi-GPU runs take."""
import glob
import json
import os
import subprocess

import pytest
import torch
from mmengine.hooks import Hook

from engine_plugins.registry import HOOKS
from tests.test_tools.test_dist_train import _free_port
from tests.test_tools.test_train import REPO, TOY_CONFIG


@HOOKS.register_module()
class RankOneNaNAt(Hook):
    """A corrupted sample on rank 1 only, at iteration ``at``."""

    def __init__(self, at: int) -> None:
        self.at = at

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        if runner.rank == 1 and runner.iter + 1 == self.at:
            data_batch['inputs'][0, 0] = float('nan')


def _dist_run(tmp_path, lines, imports=()):
    config = tmp_path / 'config.py'
    imports = ['tests.toy_task', 'tests.test_engine.test_sanity_under_ddp'
               ] + list(imports)
    config.write_text(f'_base_ = [{TOY_CONFIG!r}]\n'
                      f'custom_imports = dict(imports={imports!r})\n' +
                      '\n'.join(lines) + '\n')
    env = dict(os.environ, PORT=str(_free_port()), OMP_NUM_THREADS='1')
    proc = subprocess.run([
        'bash',
        os.path.join(REPO, 'tools', 'dist_train.sh'),
        str(config), '2', '--work-dir',
        str(tmp_path / 'work')
    ],
                          cwd=REPO,
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=300)
    events = []
    for pattern in ('sanity.jsonl', 'sanity.rank*.jsonl'):
        for path in glob.glob(str(tmp_path / 'work' / '*' / pattern)):
            with open(path) as f:
                events += [
                    dict(json.loads(line), file=os.path.basename(path))
                    for line in f
                ]
    return proc, events


@pytest.mark.slow
def test_a_nan_on_one_rank_is_skipped_on_every_rank(tmp_path):
    proc, events = _dist_run(tmp_path, [
        "custom_hooks = [dict(type='ToyProbeHook'), "
        "dict(type='RankOneNaNAt', at=5)]"
    ])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    warning = [e for e in events if e['kind'] == 'warning']
    assert [(e['file'], e['iter'], e['cause']) for e in warning] == [
        ('sanity.rank1.jsonl', 5, 'nonfinite_data')
    ]
    note = [e for e in events if e['kind'] == 'info']
    assert note[0]['file'] == 'sanity.jsonl' and note[0]['iter'] == 5
    assert "another rank's loss is non-finite" in note[0]['message']
    # Both ranks skipped the same step: identical, finite weights.
    ranks = [
        torch.load(tmp_path / 'work' / f'weights_rank{r}.pth')
        for r in (0, 1)
    ]
    for key, value in ranks[0]['state_dict'].items():
        assert torch.isfinite(value).all()
        torch.testing.assert_close(
            ranks[1]['state_dict'][key], value, rtol=0, atol=0)


@pytest.mark.slow
@pytest.mark.parametrize('lines, imports, message', [
    (["train_dataloader = dict(collate_fn=dict("
      "type='mut_keep_forward_args_collate'))"],
     ['benchmarks.mutations.common'],
     "preflight, iteration 1: the model requires batch keys ['targets']"),
    (["custom_hooks = [dict(type='MutInjectAdapter', path='net')]"],
     ['benchmarks.mutations.common'],
     'optimizer check, iteration 1: 2 trainable parameters are not in the '
     'optimizer: net.0.down.weight, net.0.up.weight'),
    (['optim_wrapper = dict(optimizer=dict(lr=0.0))'], [],
     'update check at iteration 1: the optimizer step changed no weight'),
])
def test_first_iteration_checks_stop_a_ddp_run(tmp_path, lines, imports,
                                               message):
    proc, events = _dist_run(tmp_path, lines, imports)
    assert proc.returncode != 0
    errors = [e for e in events if e['kind'] == 'error']
    assert errors and errors[0]['message'].startswith(message), errors
    assert message in proc.stdout + proc.stderr
