"""The post-mortem of a training run: ``tools/diagnose.py WORK_DIR``.

Reads what a finished, failed or killed run left behind (see
:mod:`.run_files`), ranks the likely causes (:mod:`.analysis`), draws the
curves (:mod:`.plots`), optionally audits a checkpoint
(:mod:`.checkpoint_audit`), and writes one HTML and one Markdown report
(:mod:`.report`).
"""
import os.path as osp
from typing import Optional, Tuple

from .analysis import Diagnosis, RankedCause, diagnose
from .checkpoint_audit import audit_checkpoint
from .plots import all_figures
from .report import write_html, write_markdown
from .run_files import RunFiles, load_run

__all__ = [
    'Diagnosis', 'RankedCause', 'RunFiles', 'audit_checkpoint', 'diagnose',
    'diagnose_work_dir', 'load_run', 'write_html', 'write_markdown'
]


def diagnose_work_dir(work_dir: str,
                      out: Optional[str] = None,
                      checkpoint: Optional[str] = None,
                      run: Optional[str] = None
                      ) -> Tuple[Diagnosis, str, str]:
    """Diagnose a work dir and write the reports.

    Args:
        work_dir: The run's work dir.
        out: HTML path (default ``<work_dir>/diagnosis.html``); the
            Markdown goes next to it (``.md``).
        checkpoint: A checkpoint to audit, compared with the run's first.
        run: A run folder of the work dir (default: the newest).

    Returns:
        The diagnosis and the two report paths.
    """
    files = load_run(work_dir, run)
    diag = diagnose(files)
    audit = None
    if checkpoint is not None:
        if not osp.isfile(checkpoint):
            raise FileNotFoundError(f'--checkpoint: no such file: '
                                    f'{checkpoint}')
        first = files.checkpoints[0] if files.checkpoints else None
        audit = audit_checkpoint(
            checkpoint, first if first and osp.abspath(first) !=
            osp.abspath(checkpoint) else None)
    figures = all_figures(files)
    out = out or osp.join(work_dir, 'diagnosis.html')
    name = osp.basename(files.run_dir) if files.run_dir else 'no run'
    title = f'Diagnosis of {work_dir} (run {name})'
    html_path = write_html(out, title, diag, figures, audit)
    md_path = write_markdown(
        osp.splitext(out)[0] + '.md', title, diag, figures, audit)
    return diag, html_path, md_path
