"""What a training run leaves behind, loaded for diagnosis.

A work dir holds one folder per run (``YYYYMMDD_HHMMSS``) with mmengine's
log, ``vis_data/scalars.json`` and ``vis_data/config.py``, and the sanity
engine's ``sanity.jsonl`` (findings and records) and
``sanity_steps.jsonl`` (one line per step); checkpoints sit in the work
dir itself. A run that was killed leaves some of these partial or
missing: every file is optional, and what is missing is listed in
:attr:`RunFiles.missing` with what it costs the report.
"""
import glob
import json
import os
import os.path as osp
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

_RUN_DIR = re.compile(r'^\d{8}_\d{6}$')


@dataclass
class RunFiles:
    """The files of one run.

    Attributes:
        work_dir: The work dir given.
        run_dir: The run's timestamp folder (None if there is none).
        config_text: The config as dumped, or ''.
        config_path: Where it was read from.
        log_text: mmengine's text log, or ''.
        scalars: ``scalars.json`` records (training lines have ``loss``;
            validation lines the metric keys).
        events: ``sanity.jsonl`` objects.
        steps: ``sanity_steps.jsonl`` objects.
        checkpoints: mmengine's ``iter_N.pth`` / ``epoch_N.pth`` files of
            the work dir, oldest first.
        missing: One sentence per missing file: what is lost.
    """
    work_dir: str
    run_dir: Optional[str] = None
    config_text: str = ''
    config_path: Optional[str] = None
    log_text: str = ''
    scalars: List[Dict[str, Any]] = field(default_factory=list)
    events: List[Dict[str, Any]] = field(default_factory=list)
    steps: List[Dict[str, Any]] = field(default_factory=list)
    checkpoints: List[str] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)

    def records(self, kind: str) -> List[Dict[str, Any]]:
        """Events of one ``kind`` (``'error'``, ``'contract'``, ...)."""
        return [e for e in self.events if e.get('kind') == kind]


def _jsonl(path: str) -> List[Dict[str, Any]]:
    """The objects of a JSON-lines file; a line cut off by a kill ends
    the list instead of failing."""
    out = []
    with open(path, encoding='utf-8') as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                break
    return out


_CHECKPOINT = re.compile(r'^(iter|epoch)_(\d+)\.pth$')


def _iteration(path: str) -> int:
    return int(_CHECKPOINT.match(osp.basename(path)).group(2))


def run_dirs(work_dir: str) -> List[str]:
    """The run folders of a work dir, oldest first."""
    if not osp.isdir(work_dir):
        return []
    return sorted(
        osp.join(work_dir, d) for d in os.listdir(work_dir)
        if _RUN_DIR.match(d) and osp.isdir(osp.join(work_dir, d)))


def load_run(work_dir: str, run: Optional[str] = None) -> RunFiles:
    """Load the newest run of ``work_dir`` (or the run folder ``run``).

    Raises:
        FileNotFoundError: ``work_dir`` does not exist (the message says
            what a work dir holds).
    """
    if not osp.isdir(work_dir):
        raise FileNotFoundError(
            f'work dir not found: {work_dir}. Give the --work-dir of a '
            'training run (it holds one YYYYMMDD_HHMMSS folder per run, '
            'with the log, vis_data/ and sanity.jsonl)')
    files = RunFiles(work_dir=work_dir)
    dirs = run_dirs(work_dir)
    if run is not None:
        chosen = run if osp.isdir(run) else osp.join(work_dir, run)
        if not osp.isdir(chosen):
            raise FileNotFoundError(
                f'run folder not found: {chosen}; runs in {work_dir}: '
                f'{[osp.basename(d) for d in dirs] or "none"}')
        dirs = [chosen]
    if not dirs:
        files.missing.append(
            f'no run folder (YYYYMMDD_HHMMSS) in {work_dir}: the run did not '
            'start, so only checkpoints (if any) can be read')
    else:
        files.run_dir = dirs[-1]
        _read_run_dir(files)
    files.checkpoints = sorted(
        (p for p in glob.glob(osp.join(work_dir, '*.pth'))
         if _CHECKPOINT.match(osp.basename(p))),
        key=_iteration)
    return files


def _read_run_dir(files: RunFiles) -> None:
    run_dir = files.run_dir
    name = osp.basename(run_dir)
    sources = [
        ('config', osp.join(run_dir, 'vis_data', 'config.py'),
         'no warm-up or lr from the config in the report'),
        ('log', osp.join(run_dir, f'{name}.log'), 'no text log'),
        ('scalars', osp.join(run_dir, 'vis_data', 'scalars.json'),
         'no loss, lr or metric curves'),
        ('events', osp.join(run_dir, 'sanity.jsonl'),
         'no sanity findings or contract (was SanityHook disabled?)'),
        ('steps', osp.join(run_dir, 'sanity_steps.jsonl'),
         'no per-step gradient norms or health statistics'),
    ]
    for kind, path, lost in sources:
        if not osp.isfile(path):
            files.missing.append(f'{path} is missing: {lost}')
            continue
        if kind == 'config':
            with open(path, encoding='utf-8') as f:
                files.config_text = f.read()
            files.config_path = path
        elif kind == 'log':
            with open(path, encoding='utf-8', errors='replace') as f:
                files.log_text = f.read()
        else:
            setattr(files, kind, _jsonl(path))
    for path in sorted(glob.glob(osp.join(run_dir, 'sanity.rank*.jsonl'))):
        files.events += _jsonl(path)
