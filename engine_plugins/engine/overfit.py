"""``--overfit-batches``: train on the first N batches until the loss
falls, the first sanity step every seed's author did by hand."""
import copy
import logging
from typing import List

from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.logging import print_log

from engine_plugins.registry import HOOKS

RESULT_KEY = 'overfit/passed'


@HOOKS.register_module()
class OverfitCheckHook(Hook):
    """Compare the mean loss of the first and last ``window`` iterations.

    Fires ``after_train_iter`` (records the total loss the model returned)
    and ``after_train`` (prints the verdict and stores it in the message
    hub as ``overfit/passed``).

    Args:
        factor: The loss must fall by at least this factor. Defaults to 10.
        window: Iterations averaged at each end. Defaults to 5.

    Example:
        >>> custom_hooks = [dict(type='OverfitCheckHook', factor=10)]
    """

    priority = 'LOW'

    def __init__(self, factor: float = 10.0, window: int = 5) -> None:
        self.factor = factor
        self.window = window
        self.losses: List[float] = []

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        if outputs and 'loss' in outputs:
            loss = outputs['loss']
            self.losses.append(
                float(loss.detach() if hasattr(loss, 'detach') else loss))

    def after_train(self, runner) -> None:
        n = min(self.window, max(1, len(self.losses) // 2))
        if not self.losses:
            runner.message_hub.update_info(RESULT_KEY, False)
            print_log(
                'overfit check: no loss was recorded',
                logger='current',
                level=logging.ERROR)
            return
        start = sum(self.losses[:n]) / n
        end = sum(self.losses[-n:]) / n
        ratio = start / end if end > 0 else float('inf')
        passed = ratio >= self.factor
        runner.message_hub.update_info(RESULT_KEY, passed)
        print_log(
            f'overfit check: loss {start:.4g} -> {end:.4g} (/{ratio:.3g} over '
            f'{len(self.losses)} iterations): '
            f"{'PASS' if passed else 'FAIL'} (needed /{self.factor:g})",
            logger='current',
            level=logging.INFO if passed else logging.ERROR)


def make_overfit_config(cfg: Config,
                        num_batches: int,
                        iters: int = 200,
                        factor: float = 10.0) -> Config:
    """Turn a training config into an overfit run.

    Trains ``iters`` iterations on the first ``num_batches`` batches (no
    shuffling), with a constant learning rate, no validation and no
    checkpoints; sanity checks stay on and run every 10 iterations.
    """
    if num_batches < 1 or iters < 2:
        raise ValueError('--overfit-batches needs N >= 1 and iters >= 2')
    cfg = copy.deepcopy(cfg)
    loader = cfg.train_dataloader
    loader.dataset = dict(
        type='FirstSamplesDataset',
        dataset=loader.dataset,
        num_samples=num_batches * loader.batch_size,
        # the whole run in one epoch: see FirstSamplesDataset
        times=-(-iters // num_batches))
    loader.sampler = dict(type='DefaultSampler', shuffle=False)
    loader.pop('batch_sampler', None)
    cfg.train_cfg = dict(
        type='IterBasedTrainLoop', max_iters=iters, val_interval=iters + 1)
    for key in ('val_dataloader', 'val_cfg', 'val_evaluator'):
        cfg[key] = None
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint = None
    cfg.default_hooks.logger = dict(
        type='LoggerHook', interval=max(1, iters // 20))
    if cfg.default_hooks.get('sanity'):
        cfg.default_hooks.sanity.interval = 10
    cfg.log_processor = dict(
        cfg.get('log_processor', {}), by_epoch=False, window_size=1)
    cfg.custom_hooks = list(cfg.get(
        'custom_hooks', [])) + [dict(type='OverfitCheckHook', factor=factor)]
    cfg.resume = False
    return cfg
