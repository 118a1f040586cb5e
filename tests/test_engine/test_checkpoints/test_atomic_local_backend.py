"""The atomic local file backend, and the checkpoint hook's use of it."""
import os
from unittest import mock

import pytest
from mmengine.fileio import get_file_backend

from engine_plugins.engine.checkpoints import AtomicLocalBackend


def test_registered_under_its_own_name(tmp_path):
    backend = get_file_backend(
        str(tmp_path), backend_args=dict(backend='atomic_local'))
    assert isinstance(backend, AtomicLocalBackend)
    # the default for local paths stays mmengine's own backend
    assert type(get_file_backend(str(tmp_path))).__name__ == 'LocalBackend'


def test_writes_are_atomic(tmp_path):
    path = tmp_path / 'sub' / 'ckpt.pth'
    backend = AtomicLocalBackend()
    backend.put(b'old', path)
    assert path.read_bytes() == b'old'
    # A crash mid-write (here: at fsync) leaves the old file intact and no
    # temporary file behind.
    with mock.patch('os.fsync', side_effect=OSError('disk full')):
        with pytest.raises(OSError, match='disk full'):
            backend.put(b'new-but-truncated', path)
    assert path.read_bytes() == b'old'
    assert os.listdir(path.parent) == ['ckpt.pth']
    backend.put_text('text', path)
    assert path.read_text() == 'text'
