"""Random streams that are a function of (seed, epoch), so that a run
resumed at an epoch boundary repeats the uninterrupted run bit for bit."""
import random
from functools import partial
from typing import Optional

import numpy as np
import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.runner import Runner

from engine_plugins.registry import HOOKS


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """A 63-bit seed drawn from ``(seed, epoch, rank)``."""
    state = np.random.SeedSequence([seed % 2**63, epoch, rank])
    return int(state.generate_state(1, np.uint64)[0] >> np.uint64(1))


def seed_worker_from_base_seed(worker_id: int, rank: int) -> None:
    """DataLoader ``worker_init_fn``: seed ``random``, numpy and torch in a
    worker from the base seed PyTorch gave it.

    PyTorch draws a new base seed from the main process's generator each
    time workers start; mmengine's own ``worker_init_fn`` replaces it with
    ``seed + worker_id``, the same in every epoch.
    """
    _seed_all(epoch_seed(torch.initial_seed(), worker_id, rank))


@HOOKS.register_module()
class EpochSeededDataHook(Hook):
    """Make every epoch's randomness a function of the run's seed and the
    epoch number, so that a resumed run continues the same random stream.

    Without it, mmengine resumes a run with the random state of a fresh
    start: persistent data-loader workers restart from their first seeds,
    numpy and ``random`` in workers repeat the same stream each epoch, and
    the main process (dropout, denoising noise, the workers' base seeds)
    starts from the seed instead of where the run was. Each epoch:

    * the main process's ``random``, numpy and torch generators are seeded
      from ``(seed, epoch, rank)``;
    * data-loader workers are restarted (persistent ones too) and seeded
      from the base seed the main process gives them, per worker and rank;
    * a ``DefaultSampler`` without an explicit ``seed`` shuffles with the
      run's seed (mmengine builds it before a resume restores the seed).

    Covers epoch-based training; iteration-based loops resume mid-stream
    and are not made exact by this hook. A persistent-worker loader pays
    one worker start per epoch.

    Args:
        restart_workers: Restart persistent workers each epoch. Without it
            a resumed run's augmentation differs from an uninterrupted one.

    Example:
        >>> default_hooks = dict(data_seed=dict(type='EpochSeededDataHook'))
    """

    priority = 'VERY_HIGH'

    def __init__(self, restart_workers: bool = True) -> None:
        self.restart_workers = restart_workers

    @staticmethod
    def _explicit_sampler_seed(runner: Runner) -> Optional[int]:
        loader_cfg = runner.cfg.get('train_dataloader') or {}
        sampler_cfg = loader_cfg.get('sampler') or {}
        return sampler_cfg.get('seed', None)

    def before_train(self, runner: Runner) -> None:
        loader = runner.train_dataloader
        loader.worker_init_fn = partial(
            seed_worker_from_base_seed, rank=get_rank())
        sampler = getattr(loader, 'sampler', None)
        if (hasattr(sampler, 'seed') and runner.seed is not None
                and self._explicit_sampler_seed(runner) is None):
            sampler.seed = runner.seed

    def before_train_epoch(self, runner: Runner) -> None:
        if runner.seed is not None:
            _seed_all(epoch_seed(runner.seed, runner.epoch, get_rank()))
        loader = runner.train_dataloader
        if (self.restart_workers
                and getattr(loader, 'persistent_workers', False)):
            # Persistent workers carry their random state across epochs;
            # new ones start from this epoch's seed.
            loader._iterator = None
