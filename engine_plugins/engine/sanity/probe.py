"""The sanity engine's seam into mmengine's training step.

``train_step`` (``BaseModel``'s, and ``MMDistributedDataParallel``'s
under DDP) always runs ``data_preprocessor(data, training=True)``, then
``forward(**data, mode='loss')`` on the unwrapped model, then
``optim_wrapper.update_params(loss)``. The probe watches the first two
with PyTorch module hooks on the unwrapped model, which fire under DDP as
they do without it; the third is the grad-sanity optim wrapper's own
method. Nothing in mmengine or the model is patched.

Only training calls are seen: the preprocessor with ``training=True`` and
``forward`` with ``mode='loss'`` on a model in train mode.
"""
import contextlib
from typing import Any, Iterator, List, Optional

import torch.nn as nn


class TrainStepProbe:
    """Module hooks that hand each training step's data to ``listener``.

    ``listener`` provides:

    * ``on_batch(data)``: the collated batch as the data loader gave it,
      before the preprocessor moves it to the device;
    * ``on_inputs(args, kwargs)``: what reaches ``forward(mode='loss')``;
    * ``on_losses(losses)``: the dict ``forward`` returned; a dict it
      returns replaces it.

    Args:
        model: The unwrapped model (``runner.model.module`` under DDP).
        listener: The object with the three methods.
    """

    def __init__(self, model: nn.Module, listener: Any) -> None:
        self.model = model
        self.listener = listener
        self._handles: List[Any] = []
        self._paused = 0

    def attach(self) -> None:
        """Register the hooks (once)."""
        if self._handles:
            return
        preprocessor = getattr(self.model, 'data_preprocessor', None)
        if isinstance(preprocessor, nn.Module):
            self._handles.append(
                preprocessor.register_forward_pre_hook(
                    self._batch_hook, with_kwargs=True))
        self._handles.append(
            self.model.register_forward_pre_hook(
                self._inputs_hook, with_kwargs=True))
        self._handles.append(
            self.model.register_forward_hook(
                self._losses_hook, with_kwargs=True))

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Hooks stay silent inside (a re-run of a step for diagnosis)."""
        self._paused += 1
        try:
            yield
        finally:
            self._paused -= 1

    def _active(self, module: nn.Module, kwargs: dict) -> bool:
        return (not self._paused and module.training
                and kwargs.get('mode') == 'loss')

    def _batch_hook(self, module, args, kwargs) -> None:
        training = kwargs.get('training', args[1] if len(args) > 1 else False)
        if training and not self._paused:
            self.listener.on_batch(
                kwargs.get('data', args[0] if args else None))

    def _inputs_hook(self, module, args, kwargs) -> None:
        if self._active(module, kwargs):
            self.listener.on_inputs(args, kwargs)

    def _losses_hook(self, module, args, kwargs, output) -> Optional[Any]:
        if self._active(module, kwargs):
            return self.listener.on_losses(output)
        return None
