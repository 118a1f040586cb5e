"""Checkpoint files on a local disk: what is wrong with a damaged one,
whether one can be loaded, the ``last_checkpoint`` pointer, and leftovers
of interrupted saves.

A PyTorch checkpoint is a zip archive (``torch.save`` since 1.6) whose
members carry CRC-32 checksums, so a truncated or overwritten file is
recognised without unpickling it.
"""
import errno
import os
import os.path as osp
import re
import shutil
import tempfile
import zipfile
from typing import List, Optional, Sequence, Tuple, Union

# Names of the temporary files that engine_plugins' atomic writer creates
# next to their target: ``.<target name>.<random>.tmp``.
TEMPORARY_NAME = re.compile(r'^\..+\.[A-Za-z0-9_]+\.tmp$')
POINTER_NAME = 'last_checkpoint'


class CheckpointFileError(RuntimeError):
    """A checkpoint file is missing, damaged or not a checkpoint."""


def _zip_problem(path: str) -> Optional[str]:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            bad = archive.testzip()
    # A damaged header can make zipfile raise almost anything
    # (NotImplementedError for a flipped flag bit, struct.error ...).
    except Exception as exc:  # noqa: BLE001
        return ('it is truncated or damaged: its zip directory cannot be '
                f'read ({exc})')
    if bad is not None:
        return (f'it is damaged: archive member {bad!r} fails its CRC-32 '
                'check (bytes were changed after saving)')
    if not any(
            name.endswith('/data.pkl') or name == 'data.pkl'
            for name in names):
        return 'it is a zip archive but not a PyTorch checkpoint (no data.pkl)'
    return None


def diagnose_file(path: str) -> Optional[str]:
    """What is wrong with the checkpoint file ``path``, as a phrase that
    completes "checkpoint PATH: ..."; None when it looks intact.

    Reads the whole file only when it is a zip archive (to verify the CRCs
    of its members).
    """
    if not osp.exists(path):
        return 'the file does not exist'
    if osp.isdir(path):
        return 'it is a directory, not a file'
    size = osp.getsize(path)
    if size == 0:
        return ('the file is empty (0 bytes): a save was interrupted or the '
                'disk was full when it was written')
    with open(path, 'rb') as f:
        head = f.read(16)
    if head.startswith(b'PK'):
        return _zip_problem(path)
    if head[:1] == b'\x80':
        # A legacy (non-zip) torch.save file: a pickle stream. It cannot be
        # verified without unpickling; the loader reports its failures.
        return None
    # safetensors: a little-endian u64 header length, then a JSON header.
    if len(head) >= 9 and head[4:8] == b'\0' * 4 and head[8:9] == b'{':
        return ('it is a safetensors file, not a torch.save checkpoint: '
                'convert it with safetensors.torch.load_file and torch.save')
    if head.lstrip()[:1] in (b'{', b'[', b'#') or head.isascii():
        text = head.decode('ascii', 'replace').strip()
        return (f'it is a text file (starts with {text!r}), not a PyTorch '
                'checkpoint')
    return (f'it is not a PyTorch checkpoint (starts with bytes {head[:8]!r}; '
            'torch.save files start with PK or \\x80)')


def is_loadable(path: str) -> bool:
    """Whether ``path`` is a structurally intact checkpoint file."""
    return diagnose_file(path) is None


def write_atomically(path,
                     data: Union[bytes, str],
                     mode: str = 'wb',
                     encoding: Optional[str] = None) -> None:
    """Write ``data`` to ``path`` so that a kill leaves the old content or
    the new one, never an empty or partial file: a temporary file next to
    it (:data:`TEMPORARY_NAME`), fsynced, then renamed into place.

    Raises:
        OSError: on a full disk, naming the file, the space it needs and
            the space left; the old file is unchanged.
    """
    path = os.fspath(path)
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=folder, prefix=f'.{osp.basename(path)}.', suffix='.tmp')
    try:
        with os.fdopen(fd, mode, encoding=encoding) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if osp.exists(tmp):
            os.remove(tmp)
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC,
                                                      errno.EDQUOT):
            free = shutil.disk_usage(folder).free
            raise OSError(
                exc.errno, f'no space left to write {path}: it needs '
                f'{len(data) / 2**20:.1f} MiB and {folder} has '
                f'{free / 2**20:.1f} MiB free. The file there before (if '
                'any) is unchanged; free space or point work_dir elsewhere, '
                'then resume.') from None
        raise


def write_text_atomically(path: str, text: str) -> None:
    """:func:`write_atomically` for text."""
    write_atomically(path, text, 'w')


def remove_stale_temporaries(folder: str) -> Tuple[int, int]:
    """Delete the temporary files that interrupted atomic writes left in
    ``folder``.

    Call it before the run writes anything: a temporary file of a write in
    progress looks the same.

    Returns:
        ``(files removed, bytes freed)``.
    """
    removed = freed = 0
    if not osp.isdir(folder):
        return removed, freed
    for name in os.listdir(folder):
        path = osp.join(folder, name)
        if TEMPORARY_NAME.match(name) and osp.isfile(path):
            size = osp.getsize(path)
            try:
                os.remove(path)
            except OSError:
                continue  # removed by someone else meanwhile
            removed += 1
            freed += size
    return removed, freed


def read_pointer(work_dir: str) -> Optional[str]:
    """The path ``work_dir/last_checkpoint`` names; '' when the pointer file
    is empty, None when there is none."""
    pointer = osp.join(work_dir, POINTER_NAME)
    if not osp.isfile(pointer):
        return None
    with open(pointer) as f:
        return f.read().strip()


def step_pattern(filename_tmpl: str) -> 're.Pattern':
    """A regex for the names ``filename_tmpl`` (``'epoch_{}.pth'``) makes,
    with the step as group 1."""
    return re.compile(
        '^' + re.escape(filename_tmpl).replace(re.escape('{}'), r'(\d+)') +
        '$')


def checkpoints_newest_first(folders: Sequence[str],
                             pattern: 're.Pattern') -> List[str]:
    """The files in ``folders`` whose names match ``pattern`` (group 1: the
    step), highest step first."""
    found = {}
    for folder in folders:
        if not osp.isdir(folder):
            continue
        for name in os.listdir(folder):
            match = pattern.match(name)
            path = osp.abspath(osp.join(folder, name))
            if match and osp.isfile(path):
                found[path] = (int(match.group(1)), osp.getmtime(path))
    return sorted(found, key=lambda p: found[p], reverse=True)


def resolve_resume_point(
    work_dir: str, filename_tmpl: str, extra_folders: Tuple[str, ...] = ()
) -> Tuple[Optional[str], Optional[str]]:
    """The checkpoint that an automatic resume in ``work_dir`` should load.

    The ``last_checkpoint`` pointer wins when it names an intact file.
    Otherwise (pointer empty, pointing at a missing or damaged file) the
    intact checkpoint with the highest step among the files named by
    ``filename_tmpl`` in ``work_dir`` and ``extra_folders`` is chosen.

    Returns:
        ``(path, why)``: ``path`` is None when there is nothing to resume
        from; ``why`` is None when the pointer was fine (or absent with no
        checkpoint around), else a sentence on what was wrong with it.

    Raises:
        CheckpointFileError: checkpoints exist, but none is intact.
    """
    target = read_pointer(work_dir)
    if target and is_loadable(target):
        return target, None
    if target is None:
        why = f'{POINTER_NAME} does not exist'
    elif target == '':
        why = f'{POINTER_NAME} is empty (a save was interrupted)'
    else:
        why = f'{POINTER_NAME} names {target}: {diagnose_file(target)}'
    candidates = checkpoints_newest_first([work_dir, *extra_folders],
                                          step_pattern(filename_tmpl))
    for path in candidates:
        if is_loadable(path):
            return path, why
    if target is None and not candidates:
        return None, None
    details = '; '.join(f'{osp.basename(p)}: {diagnose_file(p)}'
                        for p in candidates[:5]) or 'no checkpoint files'
    raise CheckpointFileError(
        f'cannot resume in {work_dir}: {why}, and no intact checkpoint is '
        f'left ({details}). Start without --resume (or resume=False), or '
        'name a checkpoint with --resume PATH.')
