"""Damaged checkpoint files: every way of breaking one names the file and
what is wrong with it (never EOFError, IndexError or a zip error)."""
import io
import os
import pickle
import random
import struct

import pytest
import torch
import torch.nn as nn
from mmengine.runner.checkpoint import _load_checkpoint

from engine_plugins.engine.checkpoints import (CheckpointFileError,
                                               CheckpointIntegrityError,
                                               add_checksums, diagnose_file,
                                               is_loadable)


def _checkpoint(seed: int = 0) -> dict:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 4))
    ckpt = dict(
        meta=dict(epoch=3, iter=30),
        state_dict=model.state_dict(),
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1).state_dict())
    add_checksums(ckpt)
    return ckpt


@pytest.fixture
def good(tmp_path):
    path = tmp_path / 'epoch_3.pth'
    torch.save(_checkpoint(), path)
    return path


LOAD_ERRORS = (CheckpointFileError, CheckpointIntegrityError)


def _expect_named(path, *fragments):
    with pytest.raises(LOAD_ERRORS) as info:
        _load_checkpoint(str(path))
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_intact_checkpoint_loads_and_verifies(good):
    assert is_loadable(str(good))
    loaded = _load_checkpoint(str(good))
    ref = _checkpoint()
    for key, value in ref['state_dict'].items():
        assert torch.equal(loaded['state_dict'][key], value)


def test_zero_byte_file(tmp_path):
    path = tmp_path / 'epoch_4.pth'
    path.write_bytes(b'')
    _expect_named(path, 'empty (0 bytes)')


def test_every_truncation_is_named(good, tmp_path):
    data = good.read_bytes()
    rng = random.Random(0)
    cuts = sorted(rng.sample(range(1, len(data)), 25))
    for cut in cuts:
        path = tmp_path / f'cut_{cut}.pth'
        path.write_bytes(data[:cut])
        _expect_named(path, 'cannot load checkpoint')


def test_flipped_bytes_are_caught(good, tmp_path):
    """A byte changed anywhere in the file: the zip structure or a member's
    CRC-32 catches it; never a load of wrong weights."""
    data = bytearray(good.read_bytes())
    rng = random.Random(1)
    for trial in range(40):
        corrupt = bytearray(data)
        pos = rng.randrange(len(corrupt))
        corrupt[pos] ^= 1 << rng.randrange(8)
        path = tmp_path / f'flip_{trial}.pth'
        path.write_bytes(bytes(corrupt))
        try:
            loaded = _load_checkpoint(str(path))
        except (CheckpointFileError, CheckpointIntegrityError) as exc:
            assert str(path) in str(exc)
            continue
        # Only bytes that carry no data (e.g. zip padding/comment fields)
        # may change without an error; the weights are then intact.
        for key, value in _checkpoint()['state_dict'].items():
            assert torch.equal(loaded['state_dict'][key], value), pos


@pytest.mark.parametrize(
    'content, fragment',
    [(b'{"model": "not weights"}', 'text file'),
     (b'hello, this is a log file\n', 'text file'),
     (struct.pack('<Q', 2) + b'{}', 'safetensors'),
     (b'\x00\x01\x02\x03\xff\xfe\xfd\xfc' * 4, 'not a PyTorch checkpoint')])
def test_foreign_files(tmp_path, content, fragment):
    path = tmp_path / 'weights.pth'
    path.write_bytes(content)
    _expect_named(path, fragment)


def test_legacy_pickle_truncated(tmp_path):
    buffer = io.BytesIO()
    torch.save(_checkpoint(), buffer, _use_new_zipfile_serialization=False)
    path = tmp_path / 'legacy.pth'
    path.write_bytes(buffer.getvalue()[:200])
    _expect_named(path, 'cannot load checkpoint')


def test_not_a_dict(tmp_path):
    path = tmp_path / 'tensor.pth'
    torch.save(torch.zeros(3), path)
    _expect_named(path, 'holds a Tensor')


def test_zip_without_torch_data(tmp_path):
    import zipfile
    path = tmp_path / 'archive.pth'
    with zipfile.ZipFile(path, 'w') as archive:
        archive.writestr('readme.txt', 'hi')
    assert 'no data.pkl' in diagnose_file(str(path))
    _expect_named(path, 'no data.pkl')


@pytest.mark.parametrize('damage, fragment', [
    (lambda t: t.zero_(), 'all values are 0'),
    (lambda t: t.view(-1)[:3].fill_(float('nan')), '3 of 256 values are '
     'NaN/Inf'),
    (lambda t: t.view(-1)[0].add_(1e-3), 'its values changed'),
])
def test_tensors_changed_after_saving_are_named(tmp_path, damage, fragment):
    """Valid zip, wrong weights: only the saved checksums can tell."""
    ckpt = _checkpoint()
    damage(ckpt['state_dict']['0.weight'])
    path = tmp_path / 'edited.pth'
    torch.save(ckpt, path)
    message = _expect_named(path, 'state_dict.0.weight', fragment)
    assert '1 tensor(s)' in message


def test_missing_and_added_tensors_are_named(tmp_path):
    ckpt = _checkpoint()
    del ckpt['state_dict']['2.bias']
    ckpt['state_dict']['extra'] = torch.ones(2)
    path = tmp_path / 'edited.pth'
    torch.save(ckpt, path)
    _expect_named(path, 'state_dict.2.bias is missing',
                  'state_dict.extra was added')


def test_checkpoint_without_record_loads(tmp_path):
    path = tmp_path / 'plain.pth'
    torch.save(dict(state_dict=nn.Linear(2, 2).state_dict()), path)
    assert set(_load_checkpoint(str(path))['state_dict']) == {'weight', 'bias'}


def test_untrusted_pickle_still_explained_as_such(tmp_path):

    class RunsCode:

        def __reduce__(self):
            return (os.system, ('true', ))

    path = tmp_path / 'evil.pth'
    torch.save(dict(x=RunsCode()), path)
    with pytest.raises(pickle.UnpicklingError, match='allowlist'):
        _load_checkpoint(str(path))
