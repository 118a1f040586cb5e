"""tools/hpo.py: trials through the Runner, resume from storage, pruning,
failed trials with the sanity engine's reason, trials of killed processes,
and a trainable best config."""
import os
import os.path as osp
import signal
import socket
import subprocess
import sys
import time

import optuna
import pytest
import torch

from engine_plugins.utils import build_runner, load_config
from tests.tool_loading import load_tool

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = """
_base_ = [{base!r}]
geometry = dict(rows=3, cols=3, spacing=0.5, ris_measurements=None)
scene = dict(geometry=geometry, num_sources=1, num_snapshots=16)
train_dataloader = dict(batch_size=4, num_workers=0,
                        persistent_workers=False, dataset=scene)
val_dataloader = dict(batch_size=8, dataset=dict(
    scene, num_samples=7, cache_dir={cache!r}))
test_dataloader = val_dataloader
val_evaluator = dict(geometry=geometry, num_snapshots=16, decode=False)
test_evaluator = val_evaluator
model = dict(geometry=geometry, hidden=(16, ))
train_cfg = dict(max_iters=100, val_interval=2)
default_hooks = dict(logger=dict(interval=1))
visualizer = dict(vis_backends=[dict(type='LocalVisBackend')])
"""


hpo = load_tool('hpo')


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Small complex eigh calls are much faster on one thread here (see
    tests/test_models/test_ris/conftest.py)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _tiny_config(tmp_path, extra=''):
    path = tmp_path / 'tiny_ris.py'
    path.write_text(
        TINY.format(
            base=osp.join(REPO, 'configs', 'ris', 'ris_upa8x8_cpu.py'),
            cache=str(tmp_path / 'cache')) + extra)
    return str(path)


@pytest.mark.slow
def test_study_runs_resumes_and_writes_trainable_best_config(tmp_path):
    config = _tiny_config(tmp_path)
    storage = f'sqlite:///{tmp_path}/hpo.db'
    args = [
        config, '--n-trials', '2', '--epochs-per-trial', '2', '--space',
        'narrow', '--storage', storage, '--work-dir',
        str(tmp_path / 'hpo')
    ]
    study = hpo.main(args)
    assert [t.state.name for t in study.trials] == ['COMPLETE', 'COMPLETE']
    # Two validations per trial (iterations 2 and 4), each reported.
    assert all(sorted(t.intermediate_values) == [2, 4] for t in study.trials)
    assert all(t.value == t.intermediate_values[4] for t in study.trials)
    # Resume: the study has 2 finished trials, so --n-trials 3 adds one,
    # with parameters of its own (a sampler seeded as in the first run
    # would draw the first trial's again).
    args[2] = '3'
    study = hpo.main(args)
    assert len(study.trials) == 3
    assert study.trials[2].state.name == 'COMPLETE'
    assert study.trials[2].params not in [t.params for t in study.trials[:2]]

    best = tmp_path / 'hpo' / 'best_config.py'
    cfg = load_config(str(best), work_dir=str(tmp_path / 'retrain'))
    lr = study.best_trial.params['lr']
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(lr)
    assert cfg.train_cfg.max_iters == 100  # the full schedule, not a trial's
    cfg.train_cfg.update(max_iters=1, val_interval=1)
    cfg.default_hooks.checkpoint = None
    cfg.experiment_name = 'hpo_best_retrain'
    runner = build_runner(cfg)
    runner.train()
    assert runner.iter == 1


@pytest.mark.slow
def test_pruned_on_intermediate_validation_loss(tmp_path):
    study = hpo.run_study(
        _tiny_config(tmp_path),
        n_trials=1,
        epochs=3,
        work_dir=str(tmp_path / 'hpo'),
        pruner=optuna.pruners.ThresholdPruner(upper=0.0))
    trial = study.trials[0]
    assert trial.state.name == 'PRUNED'
    assert list(trial.intermediate_values) == [2]  # stopped at the first


@pytest.mark.slow
def test_nonfinite_gradients_fail_the_trial_with_the_reason(tmp_path):
    import tests.test_models.test_ris.test_ris_training  # noqa: F401
    broken = """
model = dict(_delete_=True, type='RISDegenerateNet', fp32_loss_region=False,
             stabilize=False)
optim_wrapper = dict(type='AmpGradSanityOptimWrapper', dtype='bfloat16')
"""
    study = hpo.run_study(
        _tiny_config(tmp_path, broken),
        n_trials=1,
        epochs=2,
        work_dir=str(tmp_path / 'hpo'))
    trial = study.trials[0]
    assert trial.state.name == 'FAIL'
    assert trial.value is None  # no penalty score
    assert trial.user_attrs['fail_reason'].startswith(
        'NonFiniteGradError: non-finite gradients at iteration 1 with a '
        'finite loss')
    with pytest.raises(ValueError):
        study.best_trial  # nothing completed: nothing to write


def _dead_pid():
    proc = subprocess.Popen([sys.executable, '-c', 'pass'])
    proc.wait()
    return proc.pid


def test_trials_of_dead_processes_fail_and_do_not_count():
    study = optuna.create_study()
    host = socket.gethostname()
    dead, alive, elsewhere, reused, done = (study.ask() for _ in range(5))
    for trial in (dead, elsewhere):
        trial.set_user_attr('pid', _dead_pid())
        trial.set_user_attr('host', host)
    elsewhere.set_user_attr('host', 'another-host')
    hpo.record_process(alive)
    hpo.record_process(reused)
    reused.set_user_attr('pid_start', 'an earlier process')
    study.tell(done, 1.0)

    failed = hpo.fail_dead_trials(study)

    assert [t.number for t in failed] == [dead.number, reused.number]
    states = [t.state.name for t in study.trials]
    assert states == ['FAIL', 'RUNNING', 'RUNNING', 'FAIL', 'COMPLETE']
    reason = study.trials[dead.number].user_attrs['fail_reason']
    assert reason.startswith(
        f"process died: pid {dead.user_attrs['pid']} on {host} ended while "
        'the trial was running (killed')
    # Only the completed trial counts towards --n-trials.
    assert hpo.counted_trials(study) == 1
    assert hpo.fail_dead_trials(study) == []  # nothing left to fail


def test_sampler_seed_differs_per_resume():
    seeds = {hpo.sampler_seed(s, n) for s in range(3) for n in range(3)}
    assert len(seeds) == 9  # (0, 2) and (2, 0) included
    assert hpo.sampler_seed(0, 2) == hpo.sampler_seed(0, 2)


def _running_trial_with_params(storage, name):
    try:
        study = optuna.load_study(study_name=name, storage=storage)
        trials = study.get_trials(
            deepcopy=False, states=(optuna.trial.TrialState.RUNNING, ))
    except Exception:  # not created yet, or the database is busy
        return None
    return next((t for t in trials if 'pid' in t.user_attrs and t.params),
                None)


@pytest.mark.slow
def test_a_killed_run_is_failed_and_replaced_on_resume(tmp_path):
    storage = f'sqlite:///{tmp_path}/hpo.db'
    args = [
        _tiny_config(tmp_path), '--storage', storage, '--study-name', 'kill',
        '--work-dir',
        str(tmp_path / 'hpo')
    ]
    # Long enough trials (100 iterations) that the kill lands mid-trial.
    proc = subprocess.Popen(
        [sys.executable,
         osp.join(REPO, 'tools', 'hpo.py')] + args +
        ['--n-trials', '2', '--epochs-per-trial', '50'],
        cwd=REPO,
        env=dict(os.environ, OMP_NUM_THREADS='1'),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 180
        running = None
        while running is None and proc.poll() is None:
            assert time.monotonic() < deadline, 'no trial started'
            time.sleep(0.1)
            running = _running_trial_with_params(storage, 'kill')
        assert running is not None, proc.stderr.read().decode()[-3000:]
        assert running.user_attrs['pid'] == proc.pid
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()

    # The killed trial does not count: --n-trials 1 runs one new trial,
    # which counts however it ends.
    study = hpo.main(args + ['--n-trials', '1', '--epochs-per-trial', '1'])
    killed, new = study.trials
    assert killed.number == running.number
    assert killed.state.name == 'FAIL'
    assert killed.user_attrs['process_died'] is True
    assert killed.user_attrs['fail_reason'].startswith(
        f'process died: pid {proc.pid} on {socket.gethostname()}')
    assert new.state.name != 'RUNNING'
    assert hpo.counted_trials(study) == 1
    # A sampler seeded as in the first run would draw the killed trial's
    # parameters again.
    assert new.params != killed.params


TOY_EPOCHS = """
_base_ = [{base!r}]
train_cfg = dict(_delete_=True, type='EpochBasedTrainLoop', max_epochs=10,
                 val_interval=5)
default_hooks = dict(checkpoint=dict(by_epoch=True, interval=5))
log_processor = dict(by_epoch=True)
hpo = dict(
    monitor='toy/mse',
    direction='maximize',
    spaces=dict(lr={{
        'optim_wrapper.optimizer.lr':
        dict(type='float', low=0.001, high=0.01, log=True, name='lr'),
    }}))
"""


def test_any_task_with_an_hpo_section_epoch_based_and_maximized(tmp_path):
    """Not RIS-specific: the toy task, an epoch-based loop, and a metric to
    maximize, all from the config's hpo section."""
    config = tmp_path / 'toy_epochs.py'
    config.write_text(
        TOY_EPOCHS.format(
            base=osp.join(REPO, 'tests', 'data', 'configs',
                          'toy_regression.py')))
    study = hpo.run_study(
        str(config), n_trials=2, epochs=2, space='lr',
        work_dir=str(tmp_path / 'hpo'))
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE
    assert [t.state.name for t in study.trials] == ['COMPLETE', 'COMPLETE']
    # one validation per epoch, reported at epochs 1 and 2
    assert all(sorted(t.intermediate_values) == [1, 2] for t in study.trials)
    assert study.best_value == max(t.value for t in study.trials)
    for trial in study.trials:
        lr = trial.user_attrs['overrides']['optim_wrapper.optimizer.lr']
        assert lr == trial.params['lr'] and 0.001 <= lr <= 0.01


def test_a_config_without_hpo_section_or_space_is_named(tmp_path):
    toy = osp.join(REPO, 'tests', 'data', 'configs', 'toy_regression.py')
    with pytest.raises(SystemExit, match=r'toy_regression\.py has no `hpo` '
                       'section'):
        hpo.main([toy, '--work-dir', str(tmp_path)])
    with pytest.raises(SystemExit, match=r"--space 'huge': .* declares the "
                       r"spaces \['narrow', 'wide'\]"):
        hpo.main([_tiny_config(tmp_path), '--space', 'huge', '--work-dir',
                  str(tmp_path)])


def test_missing_data_stops_the_study_before_its_first_trial(
        tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    config = osp.join(REPO, 'configs', 'psalm_yolo', 'psalm_yolo_n_coco.py')
    with pytest.raises(SystemExit) as info:
        hpo.main([
            config, '--work-dir',
            str(tmp_path / 'hpo'), '--storage',
            f"sqlite:///{tmp_path / 'hpo.db'}"
        ])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert 'tools/hpo.py' in err
    assert 'train_dataloader.dataset.data_root' in err
    assert not (tmp_path / 'hpo.db').exists()
