"""The tools' check before the Runner is built: missing inputs
(:mod:`.data_preflight`) and GPU settings on a machine without a GPU
(:mod:`.device_preflight`), reported together in one message.

Example:
    >>> cfg = load_config('configs/psalm_yolo_h100.py')
    >>> preflight_or_exit(cfg, 'train', 'tools/train.py',
    ...                   'configs/psalm_yolo_h100.py')
"""
import sys
from typing import Callable, List, Mapping, Optional, Sequence

from .data_preflight import (describe_missing_inputs, find_missing_inputs,
                             repo_file, wrap_text)
from .device_preflight import DeviceFinding, check_device_settings

#: Exit status of a tool stopped by the preflight (1 is a run's own
#: failure, e.g. ``--overfit-batches`` FAIL).
EXIT_STATUS = 2


class PreflightError(Exception):
    """The command cannot start: inputs are missing or a setting needs a
    GPU. The message lists all of them, with what to do."""


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


def _count(n: int, one: str, many: str) -> str:
    return f'{n} {one if n == 1 else many}'


def run_preflight(cfg,
                  command: str,
                  command_line: str,
                  config: str,
                  labels: Optional[Mapping[str, str]] = None,
                  gpu: Optional[bool] = None,
                  log: Callable[[str], None] = _stderr) -> List[DeviceFinding]:
    """Check ``cfg`` for ``command`` before the Runner is built.

    GPU settings that are fine to ignore here are logged, one
    ``preflight:`` line each.

    Args:
        cfg: The config as the Runner will get it.
        command: ``'train'`` or ``'test'``.
        command_line: The command up to its options, as the message
            names it, e.g. ``'tools/test.py CONFIG CKPT'``.
        config: The config path as given to the tool.
        labels: Names for top-level keys a tool argument set, e.g.
            ``{'load_from': '--resume'}``.
        gpu: Whether the machine has a GPU (default: detect).
        log: Where the info lines go (default: stderr).

    Returns:
        The GPU findings (all fine to ignore).

    Raises:
        PreflightError: inputs are missing or a setting must change; the
            message names every one.
    """
    missing = find_missing_inputs(cfg, command, labels)
    findings = check_device_settings(cfg, command, gpu=gpu)
    for finding in findings:
        if not finding.must_change:
            log('\n'.join(wrap_text(f'preflight: no GPU: {finding.message}')))
    errors = [f for f in findings if f.must_change]
    if not missing and not errors:
        return findings
    problems = []
    if missing:
        problems.append(
            _count(len(missing), 'input is missing', 'inputs are missing'))
    if errors:
        problems.append(
            _count(len(errors), 'setting needs a GPU', 'settings need a GPU'))
    lines = wrap_text(
        f"{command_line}: cannot start: {' and '.join(problems)}. Nothing "
        'was built or trained.')
    if missing:
        lines += [
            '',
            describe_missing_inputs(missing, cfg, command_line, config)
        ]
    if errors:
        lines += ['', 'Settings to change on this machine (it has no GPU):']
        for finding in errors:
            lines += wrap_text(finding.message, '  ')
    raise PreflightError('\n'.join(lines))


def preflight_or_exit(
    cfg,
    command: str,
    tool: str,
    config: str,
    labels: Optional[Mapping[str, str]] = None,
    arguments: Sequence[str] = ()
) -> None:
    """:func:`run_preflight`; on :class:`PreflightError` print its message
    to stderr and exit with :data:`EXIT_STATUS` (no traceback).

    Args:
        cfg: The config as the Runner will get it.
        command: ``'train'`` or ``'test'``.
        tool: The tool's path in this repository, e.g.
            ``'tools/train.py'``.
        config: The config path as given to the tool.
        labels: Names for top-level keys a tool argument set.
        arguments: The tool's other positional arguments (the message's
            command lines repeat them), e.g. the checkpoint of a test.
    """
    command_line = ' '.join([repo_file(tool), config, *arguments])
    try:
        run_preflight(cfg, command, command_line, config, labels)
    except PreflightError as exc:
        _stderr(str(exc))
        raise SystemExit(EXIT_STATUS) from None
