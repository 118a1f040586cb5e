"""Hook that runs the preflight checks on the first iterations."""
import logging
from typing import Optional

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.runner import BaseLoop

from engine_plugins.registry import HOOKS
from ..sanity.errors import TrainingSanityError
from ..sanity.preflight import (check_batch_contract, check_dataset_classes,
                                check_detection_targets, check_loss_start)


@HOOKS.register_module()
class PreflightHook(Hook):
    """Check the batch contract, detection targets and loss start values.

    ``before_train`` compares the model's ``num_classes`` with the classes
    of the training and validation datasets, then wraps the model's
    ``_run_forward`` (the call that
    receives the preprocessed batch and returns the loss dict) for the
    first ``iters`` training iterations. Inside it, before the forward
    pass: the batch contract and, for detection models, the targets; after
    it, still before backward: the loss start values. The checks read what
    the model declares (see :mod:`engine_plugins.engine.sanity.preflight`);
    a model that declares nothing is not checked. Errors raise; unused batch
    keys and far-out-of-range losses warn.

    Args:
        iters: Number of iterations to check. Defaults to 1.
        num_classes: Overrides ``model.num_classes``.
        box_format: Overrides ``model.box_format``.

    Example:
        >>> default_hooks = dict(preflight=dict(type='PreflightHook'))
    """

    priority = 'VERY_HIGH'

    def __init__(self,
                 iters: int = 1,
                 num_classes: Optional[int] = None,
                 box_format: Optional[str] = None) -> None:
        self.iters = iters
        self.num_classes = num_classes
        self.box_format = box_format

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        self._check_classes(runner, model)
        run_forward = model._run_forward
        state = dict(done=0)

        def checked_run_forward(data, mode):
            if mode != 'loss' or state['done'] >= self.iters:
                return run_forward(data, mode)
            state['done'] += 1
            where = f'preflight, iteration {runner.iter + 1}'
            try:
                if isinstance(data, dict):
                    self._check_inputs(model, data, where)
                losses = run_forward(data, mode)
                if isinstance(losses, dict):
                    self._check_losses(model, losses, where)
            except TrainingSanityError as exc:
                raise type(exc)(f'{where}: {exc}') from None
            return losses

        model._run_forward = checked_run_forward

    def _check_classes(self, runner, model) -> None:
        num_classes = self.num_classes or getattr(model, 'num_classes', None)
        if not num_classes:
            return
        loaders = [('training', runner.train_dataloader)]
        val_loop = getattr(runner, '_val_loop', None)
        if isinstance(val_loop, BaseLoop):  # built by Runner.train()
            loaders.append(('validation', val_loop.dataloader))
        for split, loader in loaders:
            try:
                check_dataset_classes(num_classes, loader.dataset, split)
            except TrainingSanityError as exc:
                raise type(exc)(f'preflight, before training: {exc}') \
                    from None

    @staticmethod
    def _check_losses(model, losses: dict, where: str) -> None:
        far_out = check_loss_start(
            losses, getattr(model, 'expected_loss_ranges', None),
            getattr(model, 'loss_clamp_limits', None))
        for message in far_out.values():
            print_log(
                f'{where}: {message}', logger='current', level=logging.WARNING)

    def _check_inputs(self, model, data: dict, where: str) -> None:
        required = getattr(model, 'required_inputs', None)
        if required is not None:
            unused = check_batch_contract(
                data, required, getattr(model, 'optional_inputs', ()))
            if unused:
                print_log(
                    f'{where}: batch keys {list(unused)} are produced by '
                    f'the data pipeline but {type(model).__name__} never '
                    'reads them (declare them in optional_inputs if that '
                    'is intended)',
                    logger='current',
                    level=logging.WARNING)
        box_format = self.box_format or getattr(model, 'box_format', None)
        num_classes = self.num_classes or getattr(model, 'num_classes', None)
        samples = data.get('data_samples')
        if box_format and num_classes and samples:
            check_detection_targets(samples, num_classes, box_format)
