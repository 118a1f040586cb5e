"""A local file backend whose writes are atomic, registered with mmengine
under its own name (``backend='atomic_local'``)."""
from mmengine.fileio import LocalBackend, register_backend

from .checkpoint_files import write_atomically

BACKEND_NAME = 'atomic_local'


class AtomicLocalBackend(LocalBackend):
    """mmengine's ``LocalBackend`` with ``put``/``put_text`` that write a
    temporary file next to the target, fsync it and rename it into place:
    a kill leaves the old file or the new one, never a truncated one, and a
    full disk names the file and the space it needs.

    mmengine's backend writes with a plain ``open(path, 'wb')``. This one
    is registered under a name of its own, so selecting it is explicit
    (``backend_args=dict(backend='atomic_local')``); ``SafeCheckpointHook``
    selects it for local checkpoint folders.

    Example:
        >>> from mmengine.fileio import get_file_backend
        >>> backend = get_file_backend(
        ...     'work_dirs/run', backend_args=dict(backend='atomic_local'))
        >>> backend.put(b'...', 'work_dirs/run/epoch_1.pth')
    """

    def put(self, obj: bytes, filepath) -> None:
        write_atomically(filepath, obj, 'wb')

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        write_atomically(filepath, obj, 'w', encoding=encoding)


# A new name, not 'local': other users of mmengine keep its own backend.
register_backend(BACKEND_NAME, AtomicLocalBackend, force=True)
