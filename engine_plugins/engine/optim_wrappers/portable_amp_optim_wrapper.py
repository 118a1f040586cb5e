"""mmengine's ``AmpOptimWrapper`` that also runs on a CPU (bf16)."""
from typing import Union

import torch
from mmengine.device import (is_cuda_available, is_mlu_available,
                             is_musa_available, is_npu_available)
from mmengine.optim import AmpOptimWrapper, OptimWrapper

from engine_plugins.registry import OPTIM_WRAPPERS


def has_accelerator() -> bool:
    """Whether mmengine sees a device its ``AmpOptimWrapper`` accepts."""
    return (is_cuda_available() or is_npu_available() or is_mlu_available()
            or is_musa_available())


@OPTIM_WRAPPERS.register_module(
    name=['PortableAmpOptimWrapper', 'AmpOptimWrapper'])
class PortableAmpOptimWrapper(AmpOptimWrapper):
    """``AmpOptimWrapper`` that runs bf16 autocast on a CPU.

    mmengine's wrapper asserts that an accelerator exists, so a config
    with AMP cannot even be tried on a laptop or in CI. On an accelerator
    this class is mmengine's wrapper unchanged. Without one it runs bf16
    autocast with no loss scaler (bf16 has fp32's exponent range, so
    scaling buys nothing; the disabled scaler passes losses and steps
    through and saves an empty state, so checkpoints load on either
    device); fp16 on a CPU is refused with a message saying what to set.

    Registered in the ``engine_plugins`` scope under its own name and as
    ``AmpOptimWrapper``: configs in that scope that name mmengine's wrapper
    get this one; mmengine's own class is not changed.

    Args:
        loss_scale: As ``AmpOptimWrapper`` (unused on a CPU).
        dtype: ``'float16'``/``'bfloat16'`` (or torch dtypes); on a CPU
            only bf16 (None means bf16).
        use_fsdp: As ``AmpOptimWrapper``.
        **kwargs: ``OptimWrapper`` arguments.

    Example:
        >>> optim_wrapper = dict(
        ...     type='AmpOptimWrapper', dtype='bfloat16',
        ...     optimizer=dict(type='AdamW', lr=1e-4))
    """

    def __init__(self,
                 loss_scale: Union[str, float, dict] = 'dynamic',
                 dtype: Union[str, torch.dtype, None] = None,
                 use_fsdp: bool = False,
                 **kwargs) -> None:
        if has_accelerator():
            super().__init__(
                loss_scale=loss_scale,
                dtype=dtype,
                use_fsdp=use_fsdp,
                **kwargs)
            return
        if isinstance(dtype, str):
            dtype = getattr(torch, dtype, dtype)
        if dtype not in (None, torch.bfloat16):
            raise ValueError(
                f'AMP on CPU supports dtype=bfloat16 only, got {dtype}. '
                "Set optim_wrapper.dtype='bfloat16' (or leave it unset) for "
                'CPU runs; float16 needs a GPU.')
        OptimWrapper.__init__(self, **kwargs)
        self._scale_update_param = None
        self.loss_scaler = torch.amp.GradScaler('cpu', enabled=False)
        self.cast_dtype = torch.bfloat16
