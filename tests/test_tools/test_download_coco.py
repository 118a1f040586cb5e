"""tools/download_coco.sh against a local fake of images.cocodataset.org
(a file:// folder of small zips): arguments, layout, checksum and size
checks, resume, and re-runs that skip finished steps."""
import hashlib
import os
import os.path as osp
import re
import shutil
import subprocess
import zipfile

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(REPO, 'tools', 'download_coco.sh')
# The published values (see the script's header for the sources).
PUBLISHED = {
    'ANNOTATIONS': ('f4bbac642086de4f52a3fdda2de5fa2c', 252907541),
    'VAL2017': ('442b8da7639aecaf257c1dceb8ba8c80', 815585330),
    'TRAIN2017': ('cced6f7f71b7629ddf16f17bbcfab6b2', 19336861798),
}
# name in the env overrides -> (path under the base URL, member files)
ARCHIVES = {
    'ANNOTATIONS': ('annotations/annotations_trainval2017.zip', [
        'annotations/instances_train2017.json',
        'annotations/instances_val2017.json',
        'annotations/captions_val2017.json'
    ]),
    'VAL2017': ('zips/val2017.zip',
                ['val2017/000000000139.jpg', 'val2017/000000000285.jpg']),
    'TRAIN2017': ('zips/train2017.zip',
                  ['train2017/000000000009.jpg',
                   'train2017/000000000025.jpg']),
}

pytestmark = pytest.mark.skipif(
    shutil.which('curl') is None, reason='the script downloads with curl')


@pytest.fixture
def server(tmp_path):
    """A folder laid out like images.cocodataset.org, and the environment
    that points the script at it with the fake archives' checksums."""
    root = tmp_path / 'server'
    env = dict(os.environ, COCO_BASE_URL=f'file://{root}')
    for key, (path, members) in ARCHIVES.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(target, 'w') as zf:
            for member in members:
                zf.writestr(member, f'content of {member}\n' * 50)
        data = target.read_bytes()
        env[f'COCO_MD5_{key}'] = hashlib.md5(data).hexdigest()
        env[f'COCO_SIZE_{key}'] = str(len(data))
    return root, env


def _run(args, env, cwd=None):
    return subprocess.run(
        ['bash', SCRIPT] + list(args),
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120)


def test_help_and_argument_errors():
    env = dict(os.environ)
    proc = _run(['--help'], env)
    assert proc.returncode == 0
    assert proc.stdout.startswith(
        'Usage: bash tools/download_coco.sh [--no-train] [--keep-zips] DIR')
    for args, error in [([], 'DIR is missing'),
                        (['--bogus', 'd'], 'unknown option: --bogus'),
                        (['a', 'b'], "one DIR only (got 'a' and 'b')")]:
        proc = _run(args, env)
        assert proc.returncode == 2, args
        assert error in proc.stderr
        assert 'Usage:' in proc.stderr


def test_the_published_checksums_and_sizes_are_the_defaults(server, tmp_path):
    _, env = server
    text = open(SCRIPT).read()
    for key, (md5, size) in PUBLISHED.items():
        assert f'${{COCO_MD5_{key}-{md5}}}' in text
        assert f'${{COCO_SIZE_{key}-{size}}}' in text
    # Without the overrides the fake archive fails the real size check,
    # and (size check off) the real MD5.
    for key in PUBLISHED:
        env.pop(f'COCO_MD5_{key}')
        env.pop(f'COCO_SIZE_{key}')
    proc = _run([str(tmp_path / 'coco')], env)
    assert proc.returncode == 1
    assert re.search(
        r'annotations_trainval2017.zip has \d+ bytes, expected '
        '252907541', proc.stderr)
    proc = _run([str(tmp_path / 'coco')], dict(env, COCO_SIZE_ANNOTATIONS=''))
    assert proc.returncode == 1
    assert 'expected f4bbac642086de4f52a3fdda2de5fa2c' in proc.stderr
    assert not (tmp_path / 'coco' / 'annotations').exists()


def test_download_check_unpack_then_skip_everything(server, tmp_path):
    root, env = server
    coco = tmp_path / 'coco'
    proc = _run([f'{coco}/'], env)
    assert proc.returncode == 0, proc.stderr
    for _, members in ARCHIVES.values():
        for member in members:
            assert (coco / member).read_text().startswith('content of')
    assert proc.stdout.count('[get]') == 3
    assert proc.stdout.count('[md5]') == 3
    assert f'{coco}/train2017/: 2 images' in proc.stdout
    # The archives and the state folder are gone once unpacked.
    assert sorted(os.listdir(coco)) == ['annotations', 'train2017', 'val2017']
    # A second run finds everything in place: no download, even with the
    # server gone.
    shutil.rmtree(root)
    proc = _run([str(coco)], env)
    assert proc.returncode == 0, proc.stderr
    assert '[get]' not in proc.stdout and '[md5]' not in proc.stdout
    assert proc.stdout.count('exists (delete it to download again)') == 3


def test_no_train_and_keep_zips(server, tmp_path):
    root, env = server
    coco = tmp_path / 'coco'
    proc = _run(['--no-train', '--keep-zips', str(coco)], env)
    assert proc.returncode == 0, proc.stderr
    assert '[skip] train2017.zip (--no-train)' in proc.stdout
    assert sorted(
        os.listdir(coco)) == ['.download_coco', 'annotations', 'val2017']
    assert sorted(os.listdir(coco / '.download_coco')) == [
        'annotations_trainval2017.zip', 'annotations_trainval2017.zip.md5-ok',
        'val2017.zip', 'val2017.zip.md5-ok'
    ]
    # A kept, checked archive is not fetched or hashed again.
    shutil.rmtree(coco / 'val2017')
    proc = _run(['--no-train', '--keep-zips', str(coco)], env)
    assert proc.returncode == 0, proc.stderr
    assert '[skip] val2017.zip: already downloaded and checked' in proc.stdout
    assert '[get]' not in proc.stdout and '[md5]' not in proc.stdout
    assert (coco / 'val2017' / '000000000139.jpg').is_file()


def test_a_partial_download_resumes(server, tmp_path):
    root, env = server
    coco = tmp_path / 'coco'
    state = coco / '.download_coco'
    state.mkdir(parents=True)
    data = (root / 'zips' / 'val2017.zip').read_bytes()
    (state / 'val2017.zip').write_bytes(data[:len(data) // 2])
    proc = _run(['--no-train', str(coco)], env)
    assert proc.returncode == 0, proc.stderr
    assert (coco / 'val2017' / '000000000285.jpg').is_file()


def test_a_corrupt_download_is_set_aside_and_fetched_again(server, tmp_path):
    root, env = server
    coco = tmp_path / 'coco'
    state = coco / '.download_coco'
    state.mkdir(parents=True)
    data = (root / 'zips' / 'val2017.zip').read_bytes()
    # Wrong first half: resuming appends the right second half, and the
    # MD5 check catches the result.
    (state / 'val2017.zip').write_bytes(b'x' * (len(data) // 2))
    proc = _run(['--no-train', str(coco)], env)
    assert proc.returncode == 1
    assert 'val2017.zip: MD5' in proc.stderr
    assert 'run again to download it afresh' in proc.stderr
    assert (state / 'val2017.zip.bad').is_file()
    assert not (coco / 'val2017').exists()
    proc = _run(['--no-train', str(coco)], env)
    assert proc.returncode == 0, proc.stderr
    assert (coco / 'val2017' / '000000000139.jpg').is_file()


def test_an_existing_folder_is_kept(server, tmp_path):
    _, env = server
    coco = tmp_path / 'coco'
    (coco / 'train2017').mkdir(parents=True)
    (coco / 'train2017' / 'mine.jpg').write_text('mine')
    proc = _run([str(coco)], env)
    assert proc.returncode == 0, proc.stderr
    assert os.listdir(coco / 'train2017') == ['mine.jpg']
    assert proc.stdout.count('[get]') == 2
