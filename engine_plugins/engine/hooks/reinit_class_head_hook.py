"""Fine-tune from a checkpoint of other classes: its class head is
re-initialized, everything else loads strictly."""
import logging
from typing import Optional, Sequence

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.optim import BaseOptimWrapper
from mmengine.runner import Runner

from engine_plugins.registry import HOOKS
from ..checkpoints.class_head import ClassHead, reinit_class_head
from ..checkpoints.key_match import (CheckpointMismatchError, KeyMatch,
                                     checkpoint_weights)


@HOOKS.register_module()
class ReinitClassHeadHook(Hook):
    """Load ``load_from`` for fine-tuning on other classes: the class head
    starts afresh when the checkpoint's classes differ from the model's,
    every other weight must fit exactly.

    The class head is what the model declares in its class attributes
    ``class_head_prefixes`` and ``class_count_key`` (see
    :mod:`engine_plugins.engine.checkpoints.class_head`; ``PSALMYOLO`` and
    ``RTDETR`` declare theirs), or what ``prefixes`` and ``count_key``
    name. When the checkpoint is loaded (mmengine's
    ``after_load_checkpoint``, before the weights go into the model):

    * Checkpoint and model with the same class count: nothing changes.
    * Other classes, or no class head in the checkpoint (converted
      ultralytics weights): each class-head entry the checkpoint lacks or
      has in another shape gets the model's initial value, and one line
      says so, e.g. ``load_from coco.pth: class head re-initialized
      (checkpoint 80 classes, model 3): 15 tensors (15 of another shape)
      [..., decoder.score_heads.{0-5}.{weight,bias}, ...]; 776 tensors
      loaded``.
    * Anything else that does not fit (a missing or extra key, a shape,
      also a class-head entry of another shape when the class counts are
      equal) raises :class:`CheckpointMismatchError` naming the key and
      both shapes, unless ``load_strict=False`` (then
      ``SafeCheckpointHook`` lists what keeps its initial values).

    It acts in training runs that start from ``load_from`` only: a resume
    continues a run of the same classes, and an evaluation
    (``tools/test.py``) of a checkpoint with another class head would score
    an untrained one, so both load as strictly as without this hook.

    The edited checkpoint is what the model and, at lower priority, the
    ``EMAHook`` copy load, so both start from the same fresh class head.

    Args:
        prefixes: State-dict name prefixes of the class head, for a model
            that declares none (default: the model's
            ``class_head_prefixes``).
        count_key: The entry whose first dimension is the class count
            (default: the model's ``class_count_key``).

    Example:
        >>> custom_hooks = [
        ...     dict(type='ReinitClassHeadHook'),  # before EMAHook
        ...     dict(type='EMAHook', ema_type='ExpMomentumEMA',
        ...          momentum=0.0001, strict_load=False, priority=49),
        ... ]
        >>> load_from = 'work_dirs/rtdetr_r50_coco/epoch_72.pth'
    """

    # Before EMAHook (NORMAL, 49 in our configs) copies the checkpoint
    # into the EMA model and before SafeCheckpointHook (VERY_LOW) checks
    # it.
    priority = 'ABOVE_NORMAL'

    def __init__(self,
                 prefixes: Optional[Sequence[str]] = None,
                 count_key: Optional[str] = None) -> None:
        self.prefixes = tuple(prefixes) if prefixes else None
        self.count_key = count_key
        self.head: Optional[ClassHead] = None

    @staticmethod
    def _model(runner: Runner):
        return runner.model.module if is_model_wrapper(
            runner.model) else runner.model

    def before_run(self, runner: Runner) -> None:
        # A missing or wrong declaration fails here, before any work.
        model = self._model(runner)
        self.head = ClassHead.of(model, self.prefixes, self.count_key)
        self.head.check(model.state_dict(), type(model).__name__)

    def after_load_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        if runner.cfg.get('resume', False):
            return
        # Runner.train builds the optim wrapper before loading; test() and
        # val() leave it a config.
        if not isinstance(runner.optim_wrapper, BaseOptimWrapper):
            return
        model = self._model(runner)
        if self.head is None:
            self.before_run(runner)
        model_state = model.state_dict()
        source = runner.cfg.get('load_from', None) or 'the checkpoint'
        result = reinit_class_head(checkpoint, model_state, self.head)
        match = KeyMatch(checkpoint_weights(checkpoint), model_state)
        if not match.exact and runner.cfg.get('load_strict', True):
            if result.checkpoint_classes == result.model_classes:
                where = (f'(both have {result.model_classes} classes, so '
                         'its class head is not re-initialized either)')
            else:
                classes = (f'{result.checkpoint_classes} classes'
                           if result.checkpoint_classes is not None else
                           'no class head')
                where = (f'outside the class head that fine-tuning '
                         f're-initializes ({", ".join(self.head.prefixes)}; '
                         f'checkpoint {classes}, model '
                         f'{result.model_classes})')
            raise CheckpointMismatchError(
                f'{source} does not fit {type(model).__name__} {where}: '
                f'{match.loaded} of {match.total} model tensors would load.'
                f'\n  {match.describe()}\nIs it a checkpoint of another '
                'model size or config? Change the model config to match '
                'it, or set load_strict=False (tools: --non-strict) to load '
                'what fits.')
        if result.reinitialized:
            print_log(
                result.describe(source),
                logger='current',
                level=logging.WARNING)
