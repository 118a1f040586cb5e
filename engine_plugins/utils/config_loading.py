"""Config loading for the command-line tools: clear errors for a missing
file and for ``--cfg-options`` keys that do not exist in the config, and
the runner built from it."""
import difflib
import logging
import os.path as osp
from typing import List, Mapping, Optional

from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log
from mmengine.runner import Runner


def _closest(name: str, candidates: List[str]) -> str:
    match = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f"; did you mean '{match[0]}'?" if match else ''


def check_cfg_options(cfg: Config, options: Mapping) -> List[str]:
    """Name every ``--cfg-options`` key that the config does not have.

    A new key is legal (mmengine adds it), so this warns rather than raises:
    most typos (``optim_wrapper.optimizer.lrr``) otherwise surface much later
    as an unexpected-keyword error, or never.

    Returns:
        The warning messages, one per unknown key.
    """
    messages = []
    for dotted in options:
        node, walked = cfg, []
        for part in dotted.split('.'):
            if isinstance(node, (list, tuple)) and part.isdigit():
                if int(part) >= len(node):
                    break
                node = node[int(part)]
            elif isinstance(node, (dict, ConfigDict, Config)):
                if part not in node:
                    keys = [str(k) for k in node.keys()]
                    where = '.'.join(walked) or 'the top level'
                    messages.append(
                        f"--cfg-options key '{dotted}': '{part}' is not in "
                        f'{where} of the config (it will be added)'
                        f'{_closest(part, keys)}')
                    break
                node = node[part]
            else:
                break
            walked.append(part)
    for message in messages:
        print_log(message, logger='current', level=logging.WARNING)
    return messages


def load_config(path: str,
                cfg_options: Optional[Mapping] = None,
                work_dir: Optional[str] = None,
                launcher: str = 'none') -> Config:
    """Load ``path``, merge ``cfg_options`` and set what every tool sets:
    the registry scope, the launcher, and the work dir (the given one, the
    config's, or ``./work_dirs/<config name>``).

    Raises:
        FileNotFoundError: ``path`` does not exist.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file not found: {path}')
    cfg = Config.fromfile(path)
    if cfg_options:
        check_cfg_options(cfg, cfg_options)
        cfg.merge_from_dict(cfg_options)
    cfg.setdefault('default_scope', 'engine_plugins')
    cfg.launcher = launcher
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(path))[0])
    return cfg


def build_runner(cfg: Config) -> Runner:
    """``Runner.from_cfg``, or the registered runner named by
    ``runner_type``."""
    if 'runner_type' in cfg:
        from engine_plugins.registry import RUNNERS
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)
