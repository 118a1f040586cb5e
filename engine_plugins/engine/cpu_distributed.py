"""Distributed training without a GPU: the same launcher and DDP code path
that multi-GPU runs use, on gloo."""
import logging
import os

import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.dist import is_distributed
from mmengine.logging import print_log
from mmengine.model import MMDistributedDataParallel

from engine_plugins.registry import MODEL_WRAPPERS
from .optim_wrappers.portable_amp_optim_wrapper import has_accelerator


@MODEL_WRAPPERS.register_module(
    name=['PortableDistributedDataParallel', 'MMDistributedDataParallel'])
class PortableDistributedDataParallel(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` that also wraps a CPU model.

    mmengine's Runner passes ``device_ids=[local_rank]``, which torch's DDP
    rejects for a CPU module; here a CPU module gets ``device_ids=None``.
    Registered in the ``engine_plugins`` scope under its own name and as
    ``MMDistributedDataParallel``; ``build_runner`` selects it for
    distributed runs that set no ``model_wrapper_cfg``.

    Example:
        >>> model_wrapper_cfg = dict(
        ...     type='MMDistributedDataParallel', broadcast_buffers=False,
        ...     find_unused_parameters=False)
    """

    def __init__(self, module, detect_anomalous_params: bool = False,
                 **kwargs) -> None:
        first = next(module.parameters(), None)
        if first is not None and first.device.type == 'cpu':
            kwargs['device_ids'] = None
            kwargs.pop('output_device', None)
        super().__init__(
            module=module,
            detect_anomalous_params=detect_anomalous_params,
            **kwargs)


def prepare_distributed(cfg: Config) -> None:
    """Before the Runner is built, for ``launcher='pytorch'``:

    * without an accelerator, start the process group on gloo (mmengine's
      launcher calls ``torch.cuda.set_device`` and the config's backend,
      usually nccl; the Runner then finds the group started and keeps it);
    * without a ``model_wrapper_cfg``, set the one mmengine's Runner would
      use implicitly (``broadcast_buffers=False``, the config's
      ``find_unused_parameters``), through the registry, so that it
      resolves to :class:`PortableDistributedDataParallel`.
    """
    if cfg.get('launcher', 'none') != 'pytorch':
        return
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel',
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    if has_accelerator() or is_distributed():
        return
    dist_cfg = dict(cfg.get('env_cfg', {}).get('dist_cfg', {}))
    backend = dist_cfg.pop('backend', 'nccl')
    if backend != 'gloo':
        print_log(
            f'no GPU found: using the gloo backend instead of {backend}',
            logger='current',
            level=logging.WARNING)
    os.environ.setdefault('LOCAL_RANK', '0')
    torch_dist.init_process_group(backend='gloo', **dist_cfg)
