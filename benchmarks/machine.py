"""One line that says where a benchmark ran: host, CPU or GPU, threads and
the versions that matter, printed above every benchmark table."""
import os
import platform
from importlib.metadata import PackageNotFoundError, version
from typing import Iterable

import torch

DEFAULT_PACKAGES = ('torch', 'mmengine', 'mmcv', 'mmdet')


def describe(device: str = 'cpu',
             packages: Iterable[str] = DEFAULT_PACKAGES) -> str:
    """Host, processor, CPU count, torch threads, device and versions."""
    if device == 'cuda' and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        where = (f'{props.name} ({props.total_memory / 2**30:.0f} GiB), '
                 f'CUDA {torch.version.cuda}')
    else:
        where = 'CPU'
    versions = []
    for name in packages:
        try:
            versions.append(f'{name} {version(name)}')
        except PackageNotFoundError:
            versions.append(f'{name} (not installed)')
    return (f'{platform.node()}: {platform.processor() or platform.machine()}'
            f', {os.cpu_count()} CPUs, torch threads '
            f'{torch.get_num_threads()}, device {where}; python '
            f'{platform.python_version()}, ' + ', '.join(versions))
