"""Config loading for the command-line tools: clear errors for a missing
file and for ``--cfg-options`` keys that do not exist in the config, the
data-check policy of its datasets, and the runner built from it."""
import argparse
import difflib
import inspect
import logging
import os.path as osp
import re
from typing import List, Mapping, Optional

from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log
from mmengine.runner import Runner


def _closest(name: str, candidates: List[str]) -> str:
    match = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f"; did you mean '{match[0]}'?" if match else ''


# A --cfg-options value that is Python code rather than a literal.
_CODE = re.compile(r'^\s*[\[(]?\s*dict\s*\(')


def check_cfg_options(cfg: Config, options: Mapping) -> List[str]:
    """Name every ``--cfg-options`` key that the config does not have.

    A new key is legal (mmengine adds it), so this warns rather than raises:
    most typos (``optim_wrapper.optimizer.lrr``) otherwise surface much later
    as an unexpected-keyword error, or never.

    Returns:
        The warning messages, one per unknown key.

    Raises:
        ValueError: a value is Python code such as ``dict(type=...)``,
            which mmengine passes on as a plain string.
    """
    messages = []
    for dotted, value in options.items():
        texts = value if isinstance(value, (list, tuple)) else [value]
        code = [t for t in texts if isinstance(t, str) and _CODE.match(t)]
        if code:
            raise ValueError(
                f'--cfg-options {dotted}={code[0]}: mmengine does not '
                'evaluate dict(...) values, so this would arrive as a '
                f'string. Set the fields one by one (e.g. {dotted}.0.type=X '
                'for a list entry, or NAME.type=X), or write a config file '
                'that inherits this one.')
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


# The default hooks mmengine itself lets a config disable with None.
_MMENGINE_DEFAULT_HOOKS = ('runtime_info', 'timer', 'sampler_seed', 'logger',
                           'param_scheduler', 'checkpoint')


def drop_disabled_hooks(cfg: Config) -> None:
    """Remove ``default_hooks`` entries set to None.

    mmengine accepts None only for its own six default hooks and fails
    with a bare ``AssertionError`` for any other name, so
    ``default_hooks=dict(sanity=None)`` could not disable ours.
    """
    hooks = cfg.get('default_hooks', None)
    if not hooks:
        return
    for name in [n for n, hook in hooks.items() if hook is None]:
        if name not in _MMENGINE_DEFAULT_HOOKS:
            hooks.pop(name)


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
    drop_disabled_hooks(cfg)
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
    ``runner_type``, after :func:`engine_plugins.compat.apply_runtime_fixes`
    and, for distributed runs, ``prepare_distributed`` (gloo without a
    GPU; the DDP wrapper through our registry)."""
    from engine_plugins.compat import apply_runtime_fixes
    from engine_plugins.engine.cpu_distributed import prepare_distributed
    apply_runtime_fixes()
    prepare_distributed(cfg)
    drop_disabled_hooks(cfg)
    if 'runner_type' in cfg:
        from engine_plugins.registry import RUNNERS
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)


def _accepts_data_check(cls: type) -> bool:
    # A subclass may pass data_check on through **kwargs without naming
    # it, so look along the whole class hierarchy.
    for klass in getattr(cls, '__mro__', ()):
        init = vars(klass).get('__init__')
        if init is not None and 'data_check' in inspect.signature(
                init).parameters:
            return True
    return False


def _set_on_dataset(dataset: Mapping, mode: str, registry, where: str,
                    touched: List[str]) -> None:
    inner = dataset.get('dataset')
    if isinstance(inner, Mapping):
        _set_on_dataset(inner, mode, registry, f'{where}.dataset', touched)
    for i, child in enumerate(dataset.get('datasets') or ()):
        if isinstance(child, Mapping):
            _set_on_dataset(child, mode, registry, f'{where}.datasets.{i}',
                            touched)
    kind = dataset.get('type')
    cls = kind if isinstance(kind, type) else None
    if isinstance(kind, str):
        try:
            cls = registry.get(kind)
        except Exception:  # an unknown type fails, named, when it is built
            cls = None
    if cls is not None and _accepts_data_check(cls):
        dataset['data_check'] = mode
        touched.append(where)


def set_data_check(cfg: Config, mode: str) -> List[str]:
    """Set ``data_check=mode`` on each dataset of the train, val and test
    dataloaders (and inside wrappers: ``dataset``, ``datasets``) whose
    class takes a ``data_check`` argument, resolved in the config's
    ``default_scope`` as the runner will resolve it.

    Returns:
        The config paths of the datasets set, e.g.
        ``['train_dataloader.dataset.dataset']``; a warning is logged when
        there are none.
    """
    from mmengine.registry import DATASETS
    touched: List[str] = []
    with DATASETS.switch_scope_and_registry(
            cfg.get('default_scope')) as registry:
        for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            loader = cfg.get(key)
            if isinstance(loader, Mapping) and isinstance(
                    loader.get('dataset'), Mapping):
                _set_on_dataset(loader['dataset'], mode, registry,
                                f'{key}.dataset', touched)
    if not touched:
        print_log(
            f"data_check='{mode}': no dataset of the config takes a "
            'data_check argument (CheckedCocoDataset and its subclasses do)',
            logger='current',
            level=logging.WARNING)
    return touched


def add_strictness_arguments(parser: argparse.ArgumentParser) -> None:
    """``--non-strict`` and ``--strict-data``, shared by the tools."""
    parser.add_argument(
        '--non-strict',
        action='store_true',
        help='load a checkpoint whose keys or shapes do not all fit the '
        'model (e.g. a new head): what does not fit keeps its initial '
        'values and is listed (load_strict=False)')
    parser.add_argument(
        '--strict-data',
        action='store_true',
        help='stop at dataset load on any invalid or dropped annotation '
        "(data_check='strict' on each train, val and test dataset that "
        'takes it)')


def apply_strictness_arguments(cfg: Config,
                               args: argparse.Namespace) -> None:
    """Apply :func:`add_strictness_arguments`' flags to ``cfg``."""
    if args.non_strict:
        cfg.load_strict = False
    if args.strict_data:
        set_data_check(cfg, 'strict')
