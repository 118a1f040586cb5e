"""Hook that switches the training pipeline for the last epochs."""
from typing import List

from mmcv.transforms import Compose
from mmengine.hooks import Hook

from engine_plugins.registry import HOOKS


def _innermost_dataset(dataset):
    """The dataset that owns the pipeline, under wrappers such as
    ``RepeatDataset`` or ``FirstSamplesDataset``."""
    while not hasattr(dataset, 'pipeline') and hasattr(dataset, 'dataset'):
        dataset = dataset.dataset
    return dataset


@HOOKS.register_module()
class CloseMosaicHook(Hook):
    """Train the last ``num_last_epochs`` epochs without mosaic.

    Fires in ``before_train_epoch`` of the first epoch with ``epoch >=
    max_epochs - num_last_epochs`` (also after a resume past that point)
    and replaces the pipeline of the training dataset with
    ``switch_pipeline``.

    mmdet's ``PipelineSwitchHook`` needs an absolute ``switch_epoch`` (a
    config inheriting a new ``max_epochs`` then switches at the wrong
    time) and sets the pipeline on the outermost dataset, which a wrapper
    ignores; this hook counts from the end and unwraps.

    Args:
        num_last_epochs: Epochs at the end trained with ``switch_pipeline``.
        switch_pipeline: Transform configs without mosaic.

    Example:
        >>> custom_hooks = [dict(
        ...     type='CloseMosaicHook', num_last_epochs=10,
        ...     switch_pipeline=train_pipeline_stage2)]
    """

    priority = 'NORMAL'

    def __init__(self, num_last_epochs: int,
                 switch_pipeline: List[dict]) -> None:
        if num_last_epochs < 0:
            raise ValueError(f'CloseMosaicHook: num_last_epochs must be >= '
                             f'0, got {num_last_epochs}')
        self.num_last_epochs = num_last_epochs
        self.switch_pipeline = switch_pipeline
        self._switched = False

    def switch_epoch(self, runner) -> int:
        return max(runner.max_epochs - self.num_last_epochs, 0)

    def before_train_epoch(self, runner) -> None:
        if self._switched or runner.epoch < self.switch_epoch(runner):
            return
        loader = runner.train_dataloader
        _innermost_dataset(loader.dataset).pipeline = Compose(
            self.switch_pipeline)
        if getattr(loader, 'persistent_workers', False):
            # Persistent workers hold a copy of the old pipeline: drop the
            # iterator so the next epoch starts new workers.
            loader._iterator = None
        self._switched = True
        runner.logger.info(
            f'CloseMosaicHook: epoch {runner.epoch + 1} of '
            f'{runner.max_epochs}: training pipeline switched for the last '
            f'{runner.max_epochs - runner.epoch} epoch(s)')
