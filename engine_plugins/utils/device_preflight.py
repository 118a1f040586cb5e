"""Settings written for a GPU, checked before the Runner is built on a
machine without one.

Each setting gets one of two decisions (``DeviceFinding.must_change``):

* must change, where the run would otherwise fail or be silently wrong:
  fp16 AMP (``optim_wrapper.dtype='float16'``, with or without a loss
  scaler): :class:`~engine_plugins.engine.optim_wrappers.\
portable_amp_optim_wrapper.PortableAmpOptimWrapper` (``AmpOptimWrapper``,
  ``AmpGradSanityOptimWrapper`` in our scope) runs bf16 autocast without a
  loss scaler on a CPU and refuses float16 when training starts, after
  the datasets are loaded; mmengine's own ``AmpOptimWrapper`` (e.g.
  ``mmengine.AmpOptimWrapper``) asserts a GPU; ``device='cuda...'``
  anywhere in the config; ``--launcher slurm`` or ``mpi`` (mmengine calls
  ``torch.cuda.set_device`` for them).
* fine to ignore, with an info line: ``env_cfg.cudnn_benchmark`` (cuDNN
  is not used on a CPU), ``pin_memory`` of a used dataloader (torch skips
  pinning without an accelerator), bf16 or unset-dtype AMP (runs as bf16
  autocast; ``loss_scale`` is unused).

``env_cfg.dist_cfg.backend='nccl'`` is not reported:
``engine_plugins.engine.cpu_distributed.prepare_distributed`` already
switches ``--launcher pytorch`` runs to gloo, with a warning.
"""
from dataclasses import dataclass
from typing import List, Mapping, Optional

import torch

from engine_plugins.engine.optim_wrappers.portable_amp_optim_wrapper import (
    PortableAmpOptimWrapper, has_accelerator)
from .data_preflight import uses_val_loop


@dataclass
class DeviceFinding:
    """What this machine does with one GPU setting of the config.

    Attributes:
        key: The config key (or tool argument), e.g.
            ``'optim_wrapper.dtype'``.
        message: What happens on this machine and, where it must change,
            what to set instead.
        must_change: True where the run would fail or be silently wrong;
            False where the setting is ignored and the run is fine.
    """

    key: str
    message: str
    must_change: bool


def _fp16(dtype) -> bool:
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype, dtype)
    return dtype is torch.float16


def _optim_wrapper(cfg: Mapping) -> List[DeviceFinding]:
    from mmengine.optim import AmpOptimWrapper
    from mmengine.registry import OPTIM_WRAPPERS

    wrapper = cfg.get('optim_wrapper')
    if not isinstance(wrapper, Mapping):
        return []
    kind = wrapper.get('type', 'OptimWrapper')
    cls = kind if isinstance(kind, type) else None
    if isinstance(kind, str):
        with OPTIM_WRAPPERS.switch_scope_and_registry(
                cfg.get('default_scope')) as registry:
            try:
                cls = registry.get(kind)
            except Exception:  # an unknown type fails, named, when built
                cls = None
    if cls is None or not issubclass(cls, AmpOptimWrapper):
        return []
    name = getattr(cls, '__name__', str(kind))
    dtype = wrapper.get('dtype')
    scale = wrapper.get('loss_scale', 'dynamic')
    if not issubclass(cls, PortableAmpOptimWrapper):
        return [
            DeviceFinding(
                'optim_wrapper.type',
                f'optim_wrapper.type={kind!r} is mmengine\'s '
                'AmpOptimWrapper, which needs a GPU (it asserts one when '
                "training starts). Use type='AmpOptimWrapper' with "
                "default_scope='engine_plugins' (PortableAmpOptimWrapper, "
                'bf16 autocast on a CPU) or a plain OptimWrapper.', True)
        ]
    if _fp16(dtype):
        return [
            DeviceFinding(
                'optim_wrapper.dtype',
                f'optim_wrapper.dtype={dtype!r} ({name}, '
                f'loss_scale={scale!r}): fp16 autocast with a loss scaler '
                '(GradScaler) needs a GPU. On a CPU this wrapper runs bf16 '
                'autocast without a loss scaler and refuses float16 when '
                'training starts, after the datasets are loaded. Set '
                '--cfg-options optim_wrapper.dtype=bfloat16 (the same AMP '
                'wrapper, bf16 autocast; loss_scale is then unused on a '
                'CPU, bf16 needs no scaling).', True)
        ]
    return [
        DeviceFinding(
            'optim_wrapper.dtype', f'{name}: AMP runs as bf16 autocast on '
            f'this CPU without a loss scaler (loss_scale={scale!r} is '
            'unused); nothing to change.', False)
    ]


def _cuda_devices(node, where: str) -> List[DeviceFinding]:
    found = []
    if isinstance(node, Mapping):
        for key, value in node.items():
            at = f'{where}.{key}' if where else str(key)
            if key == 'device' and isinstance(
                    value, str) and value.startswith('cuda'):
                found.append(
                    DeviceFinding(
                        at, f'{at}={value!r} needs a GPU: set it to '
                        "'cpu' (--cfg-options " + f"{at}=cpu) or remove it.",
                        True))
            else:
                found += _cuda_devices(value, at)
    elif isinstance(node, (list, tuple)):
        for i, child in enumerate(node):
            found += _cuda_devices(child, f'{where}.{i}')
    return found


def check_device_settings(cfg: Mapping,
                          command: str,
                          launcher: Optional[str] = None,
                          gpu: Optional[bool] = None) -> List[DeviceFinding]:
    """The GPU settings of ``cfg`` that ``command`` uses, and what a machine
    without a GPU does with each.

    Args:
        cfg: The config as the Runner will get it.
        command: ``'train'`` or ``'test'`` (the optim wrapper is built by
            training only).
        launcher: The job launcher (default: ``cfg.launcher``).
        gpu: Whether the machine has an accelerator mmengine uses (default:
            detect CUDA, NPU, MLU or MUSA).

    Returns:
        One finding per GPU setting; none on a machine with a GPU.
    """
    if gpu is None:
        gpu = has_accelerator()
    if gpu:
        return []
    findings: List[DeviceFinding] = []
    launcher = launcher or cfg.get('launcher', 'none')
    if launcher in ('slurm', 'mpi'):
        findings.append(
            DeviceFinding(
                '--launcher', f'--launcher {launcher} needs GPUs (mmengine '
                'calls torch.cuda.set_device for it). Without a GPU use '
                '--launcher pytorch (bash tools/dist_train.sh CONFIG N), '
                'which runs on gloo.', True))
    if command == 'train':
        findings += _optim_wrapper(cfg)
    findings += _cuda_devices(dict(cfg.items()), '')
    env = cfg.get('env_cfg') or {}
    if isinstance(env, Mapping) and env.get('cudnn_benchmark'):
        findings.append(
            DeviceFinding(
                'env_cfg.cudnn_benchmark', 'env_cfg.cudnn_benchmark=True is '
                'ignored: cuDNN is not used without a GPU; nothing to '
                'change.', False))
    if command == 'test':
        loaders = ['test_dataloader']
    else:
        loaders = ['train_dataloader'
                   ] + (['val_dataloader'] if uses_val_loop(cfg) else [])
    for key in loaders:
        loader = cfg.get(key)
        if isinstance(loader, Mapping) and loader.get('pin_memory'):
            findings.append(
                DeviceFinding(
                    f'{key}.pin_memory', f'{key}.pin_memory=True is '
                    'ignored: torch pins no memory without a GPU (it warns '
                    'once); nothing to change.', False))
    return findings
