"""Hyper-parameter search with Optuna, through the normal Runner.

The search spaces, the metric and its direction come from the config's
``hpo`` section (:mod:`engine_plugins.utils.search_space`), so any task
with one can be searched. Each trial samples config overrides from the
space ``--space`` names, trains for ``--epochs-per-trial`` "epochs"
(iteration-based loops: of ``--iters-per-epoch`` iterations, default the
config's ``val_interval``; epoch-based loops: real epochs) and validates
after each. The monitored metric (``hpo.monitor``, or ``--monitor``) is
reported to the trial, and Optuna's median pruner stops unpromising
trials. A trial
stopped by the sanity engine (non-finite loss or gradients, dead losses)
or ending with a non-finite validation loss is marked FAIL with the
reason in its ``fail_reason`` user attribute; it is never scored with a
penalty value. The best trial's config is written as a file that
``tools/train.py`` trains directly.

With ``--storage`` the study is resumed, and survives kills:

- Each trial records the process that runs it (pid, host, start time).
  A trial left RUNNING by a process that no longer exists (SIGKILL, out
  of memory, a crash of the machine) is marked FAIL when the study is
  next resumed on the same host, with ``fail_reason`` saying that its
  process died and ``process_died`` set. A RUNNING trial of a live
  process, or of another host, is left alone.
- Only the trials still missing up to ``--n-trials`` are run. Completed,
  pruned and failed trials count; trials failed by a dead process do not
  (their parameters were never evaluated), so a run killed mid-trial
  gets a replacement trial.
- The sampler's seed is derived from ``--seed`` and the number of trials
  already in the study, so a resumed study draws new parameters instead
  of replaying those of the first run.

Example:
    python tools/hpo.py configs/ris/ris_upa8x8_cpu.py --n-trials 20 \
        --epochs-per-trial 3 --space narrow --storage sqlite:///hpo.db
"""
import argparse
import copy
import math
import os
import os.path as osp
import socket
import sys
import time
from typing import Callable, Dict, List, Optional

# From a clone, use the clone's package even if another copy is installed.
_REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
if osp.isdir(osp.join(_REPO, 'engine_plugins')):
    sys.path.insert(0, _REPO)

import numpy as np  # noqa: E402
import optuna  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.hooks import Hook  # noqa: E402
from mmengine.runner import EpochBasedTrainLoop  # noqa: E402

from engine_plugins.compat import apply_runtime_fixes  # noqa: E402
from engine_plugins.engine.sanity.errors import \
    TrainingSanityError  # noqa: E402
from engine_plugins.utils import search_space  # noqa: E402
from engine_plugins.utils import build_runner, load_config  # noqa: E402
from engine_plugins.utils.preflight import preflight_or_exit  # noqa: E402

FINISHED = (optuna.trial.TrialState.COMPLETE,
            optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)


class OptunaReportHook(Hook):
    """Report the monitored validation metric to an Optuna trial after each
    validation (``after_val_epoch``) and stop the run, by raising
    ``optuna.TrialPruned``, when the pruner says so. Built per trial by
    this tool (it holds the live trial), so it is not registered.

    Args:
        trial: The running trial.
        monitor: Metric key, e.g. ``'ris/val_loss'``.
    """

    priority = 'LOW'

    def __init__(self, trial: optuna.Trial, monitor: str) -> None:
        self.trial, self.monitor = trial, monitor
        self.last: Optional[float] = None

    def after_val_epoch(self, runner, metrics=None) -> None:
        if not metrics or self.monitor not in metrics:
            raise KeyError(f'--monitor {self.monitor!r} is not among the '
                           f'validation metrics {sorted(metrics or {})}')
        value = float(metrics[self.monitor])
        if not math.isfinite(value):
            raise FloatingPointError(
                f'validation {self.monitor} = {value} at iteration '
                f'{runner.iter}')
        self.last = value
        # the pruner compares trials at equal steps: epochs or iterations
        step = runner.epoch if isinstance(runner.train_loop,
                                          EpochBasedTrainLoop) else runner.iter
        self.trial.report(value, step)
        if self.trial.should_prune():
            raise optuna.TrialPruned(
                f'{self.monitor} = {value:.4g} at step {step}')


def _proc_stat(pid: int) -> Optional[List[str]]:
    """Fields 3 onwards of ``/proc/PID/stat`` (state first, start time at
    index 19); None without procfs or when the process is gone."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            stat = f.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses.
    fields = stat[stat.rindex(')') + 2:].split()
    return fields if len(fields) > 19 else None


def _process_start(pid: int) -> Optional[str]:
    fields = _proc_stat(pid)
    return fields[19] if fields else None


def record_process(trial: optuna.Trial) -> None:
    """Record which process runs ``trial``; the start time tells a reused
    pid from the original process."""
    pid = os.getpid()
    trial.set_user_attr('pid', pid)
    trial.set_user_attr('host', socket.gethostname())
    trial.set_user_attr('pid_start', _process_start(pid))


def process_alive(pid: int, start: Optional[str] = None) -> bool:
    """Whether process ``pid`` (started at ``start``, if known) still runs
    on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    fields = _proc_stat(pid)
    if fields is None:
        return True
    if fields[0] == 'Z':
        return False  # killed, not yet reaped by its parent
    return start is None or fields[19] == start


def fail_dead_trials(study: optuna.Study) -> List[optuna.trial.FrozenTrial]:
    """Mark FAIL the RUNNING trials whose process on this host is gone.

    Returns:
        The trials marked FAIL, as they were before.
    """
    host = socket.gethostname()
    failed = []
    for trial in study.get_trials(
            deepcopy=False, states=(optuna.trial.TrialState.RUNNING, )):
        attrs = trial.user_attrs
        pid = attrs.get('pid')
        if (attrs.get('host') != host or not isinstance(pid, int)
                or process_alive(pid, attrs.get('pid_start'))):
            continue
        # Optuna has no public call to annotate another process's trial;
        # the attributes go in while it is still RUNNING (updatable).
        storage, trial_id = study._storage, trial._trial_id
        storage.set_trial_user_attr(
            trial_id, 'fail_reason',
            f'process died: pid {pid} on {host} ended while the trial was '
            'running (killed, e.g. by SIGKILL or the out-of-memory killer, '
            'or crashed); marked FAIL when the study was resumed')
        storage.set_trial_user_attr(trial_id, 'process_died', True)
        # Another process resuming the study may have failed it first.
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL,
                   skip_if_finished=True)
        failed.append(trial)
    return failed


def counted_trials(study: optuna.Study) -> int:
    """Trials that count towards ``--n-trials``: finished ones, except
    those failed because their process died."""
    return sum(t.state in FINISHED and not t.user_attrs.get('process_died')
               for t in study.get_trials(deepcopy=False))


def sampler_seed(seed: int, n_existing: int) -> int:
    """The sampler's seed for a run that finds ``n_existing`` trials in
    the study: distinct (seed, count) pairs give unrelated streams, so a
    resumed study does not replay an earlier run's parameters."""
    return int(np.random.SeedSequence([seed, n_existing]).generate_state(1)[0])


def trial_config(base: Config, overrides: Dict, work_dir: str, epochs: int,
                 iters_per_epoch: Optional[int]) -> Config:
    """The base config with the sampled overrides and a short schedule;
    the sanity checks raise on every iteration (a NaN fails the trial)."""
    cfg = copy.deepcopy(base)
    cfg.merge_from_dict(overrides)
    cfg.work_dir = work_dir
    cfg.experiment_name = f'{osp.basename(work_dir)}_{time.time_ns()}'
    if 'max_epochs' in cfg.train_cfg:
        cfg.train_cfg.update(max_epochs=epochs, val_interval=1)
    else:
        cfg.train_cfg.update(
            max_iters=epochs * iters_per_epoch, val_interval=iters_per_epoch)
    cfg.default_hooks.sanity.update(policy='raise', interval=1)
    cfg.default_hooks.checkpoint = None
    return cfg


def make_objective(base: Config, space: str, work_dir: str, epochs: int,
                   iters_per_epoch: Optional[int], monitor: str) -> Callable:

    def objective(trial: optuna.Trial) -> float:
        record_process(trial)
        overrides = search_space.sample_overrides(
            trial, base.hpo['spaces'][space])
        trial.set_user_attr('overrides', {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in overrides.items()
        })
        cfg = trial_config(base, overrides,
                           osp.join(work_dir, f'trial_{trial.number}'),
                           epochs, iters_per_epoch)
        runner = build_runner(cfg)
        hook = OptunaReportHook(trial, monitor)
        runner.register_hook(hook)
        try:
            runner.train()
        except (TrainingSanityError, FloatingPointError) as exc:
            # Recorded, then re-raised: Optuna marks the trial FAIL.
            trial.set_user_attr('fail_reason', f'{type(exc).__name__}: {exc}')
            raise
        if hook.last is None:
            raise RuntimeError('the trial never validated: check '
                               '--iters-per-epoch against the schedule')
        return hook.last

    return objective


def run_study(config: str,
              n_trials: int,
              epochs: int,
              space: str = 'narrow',
              storage: Optional[str] = None,
              study_name: Optional[str] = None,
              work_dir: Optional[str] = None,
              iters_per_epoch: Optional[int] = None,
              monitor: Optional[str] = None,
              cfg_options: Optional[Dict] = None,
              seed: int = 0,
              pruner: Optional[optuna.pruners.BasePruner] = None
              ) -> optuna.Study:
    """Create or resume the study and run the missing trials."""
    base = load_config(config, cfg_options, work_dir)
    search_space.check_hpo_section(base.get('hpo'), config)
    spaces = base.hpo['spaces']
    if space not in spaces:
        raise search_space.SearchSpaceError(
            f'--space {space!r}: {config} declares the spaces '
            f'{sorted(spaces)} (hpo.spaces)')
    monitor = monitor or base.hpo['monitor']
    direction = base.hpo.get('direction', 'minimize')
    iters_per_epoch = iters_per_epoch or base.train_cfg.get('val_interval')
    name = study_name or osp.splitext(osp.basename(config))[0]
    if storage and storage.startswith('sqlite:///'):
        # sqlite creates the file but not its folder.
        folder = osp.dirname(osp.abspath(storage[len('sqlite:///'):]))
        os.makedirs(folder, exist_ok=True)
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        load_if_exists=True,
        direction=direction,
        pruner=pruner or optuna.pruners.MedianPruner(
            n_startup_trials=3, n_warmup_steps=0))
    study.sampler = optuna.samplers.TPESampler(
        seed=sampler_seed(seed, len(study.get_trials(deepcopy=False))))
    for trial in fail_dead_trials(study):
        print(f'trial {trial.number}: its process (pid '
              f"{trial.user_attrs['pid']}) died; marked FAIL, not counted")
    done = counted_trials(study)
    remaining = max(0, n_trials - done)
    print(f'study {name!r}: {done} finished trials, running {remaining}')
    objective = make_objective(base, space, base.work_dir, epochs,
                               iters_per_epoch, monitor)
    study.optimize(
        objective,
        n_trials=remaining,
        catch=(TrainingSanityError, FloatingPointError))
    return study


def write_best_config(study: optuna.Study, config: str, out: str,
                      cfg_options: Optional[Dict] = None) -> Config:
    """The original config (full schedule) with the best trial's
    overrides, dumped as a ``.py`` file ``tools/train.py`` can train."""
    best = study.best_trial  # raises ValueError if no trial completed
    cfg = load_config(config, cfg_options)
    cfg.merge_from_dict({
        k: tuple(v) if isinstance(v, list) else v
        for k, v in best.user_attrs['overrides'].items()
    })
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    cfg.dump(out)
    return cfg


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Optuna search')
    parser.add_argument('config')
    parser.add_argument('--n-trials', type=int, default=20,
                        help='total finished trials wanted in the study '
                        '(trials whose process died do not count)')
    parser.add_argument('--epochs-per-trial', type=int, default=3)
    parser.add_argument('--iters-per-epoch', type=int, default=None,
                        help="iterations per epoch (default: the config's "
                        'train_cfg.val_interval)')
    parser.add_argument(
        '--space', default='narrow',
        help="a search space of the config's hpo.spaces")
    parser.add_argument('--storage', default=None,
                        help='e.g. sqlite:///hpo.db; resumes if it exists')
    parser.add_argument('--study-name', default=None)
    parser.add_argument(
        '--monitor', default=None,
        help="validation metric to optimize (default: the config's "
        'hpo.monitor)')
    parser.add_argument('--work-dir', default=None)
    parser.add_argument('--best-config', default=None,
                        help='output .py (default WORK_DIR/best_config.py)')
    parser.add_argument('--seed', type=int, default=0,
                        help='sampler seed, combined with the number of '
                        'trials already in the study')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def main(argv=None) -> optuna.Study:
    args = parse_args(argv)
    apply_runtime_fixes()
    # Every trial trains the config: missing data or GPU-only settings stop
    # the study before its first trial, in one message (exit status 2).
    preflight_or_exit(
        load_config(args.config, args.cfg_options, args.work_dir), 'train',
        'tools/hpo.py', args.config)
    try:
        study = _run(args)
    except search_space.SearchSpaceError as exc:
        sys.exit(f'hpo: {exc}')
    return study


def _run(args: argparse.Namespace) -> optuna.Study:
    study = run_study(args.config, args.n_trials, args.epochs_per_trial,
                      args.space, args.storage, args.study_name,
                      args.work_dir, args.iters_per_epoch, args.monitor,
                      args.cfg_options, args.seed)
    for t in study.trials:
        reason = t.user_attrs.get('fail_reason', '')
        print(f'trial {t.number}: {t.state.name} value={t.value} '
              f'{t.params} {reason}')
    if not any(t.state == optuna.trial.TrialState.COMPLETE
               for t in study.trials):
        print('no trial completed; no best config written')
        return study
    work_dir = load_config(args.config, args.cfg_options,
                           args.work_dir).work_dir
    out = args.best_config or osp.join(work_dir, 'best_config.py')
    write_best_config(study, args.config, out, args.cfg_options)
    print(f'best trial {study.best_trial.number}: value '
          f'{study.best_value:.4g}; config written to {out}')
    return study


if __name__ == '__main__':
    main()
