"""tools/install.sh without compiling anything: its functions, loaded with
``source tools/install.sh --functions-only``, against a fake interpreter
whose ``-m pip`` records the calls and "builds" a wheel from canned
``pip wheel -v`` output. Covers the wheel-cache key and lookup, the progress
filter (per-file lines, heartbeat, partial lines, full log), the exit status
through the pipe, and the mmcv step: skip, cache hit, cache miss (compile,
then keep the wheel), a bad cached wheel, a forced rebuild and a failed
build."""
import os
import os.path as osp
import shutil
import stat
import subprocess

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(REPO, 'tools', 'install.sh')
WHEEL = 'mmcv-2.1.0-cp311-cp311-linux_x86_64.whl'

# A stand-in for $PYTHON. `-c 'import mmcv._ext'` succeeds once a wheel
# whose content is "good" was installed; `-m pip wheel` prints ninja-style
# lines and writes a "good" wheel (or fails when $FAKE_STATE/fail_build
# exists); every call is appended to $FAKE_STATE/calls. torch.version.cuda
# is $FAKE_TORCH_CUDA (unset: a CPU-only torch).
FAKE_PYTHON = r'''#!/usr/bin/env bash
S=$FAKE_STATE
echo "$*" >> "$S/calls"
if [ "$1" = -c ]; then
    case "$2" in
        *mmcv._ext*) [ -f "$S/ext_ok" ]; exit ;;
        *sysconfig*)
            echo "cp311 linux_x86_64 ${FAKE_TORCH_CUDA:-none} /fake env/bin"
            exit 0 ;;
        *) exit 1 ;;
    esac
fi
[ "$1 $2" = "-m pip" ] || exit 1
shift 2
case "$1" in
    install)
        for a in "$@"; do
            case "$a" in *.whl)
                [ -f "$a" ] || { echo "no wheel $a" >&2; exit 1; }
                if grep -q good "$a"; then touch "$S/ext_ok"
                else rm -f "$S/ext_ok"; fi ;;
            esac
        done
        exit 0 ;;
    wheel)
        [ "${MMCV_WITH_OPS:-}" = 1 ] || { echo "MMCV_WITH_OPS unset"; exit 9; }
        echo "FORCE_CUDA=${FORCE_CUDA:-} ARCHS=${TORCH_CUDA_ARCH_LIST:-}" \
            "PATH1=${PATH%%:*}" > "$S/build_env"
        out=''; prev=''
        for a in "$@"; do [ "$prev" = -w ] && out=$a; prev=$a; done
        echo "Collecting mmcv==2.1.0"
        echo "  Running setup.py bdist_wheel for mmcv"
        echo "[1/2] c++ -MMD -MF n.o.d -c /src/mmcv/ops/nms.cpp -o n.o"
        if [ -f "$S/fail_build" ]; then
            echo "FAILED: roi_align.o"
            echo "roi_align.cpp:1:1: fatal error: boom"
            exit 1
        fi
        echo "[2/2] c++ -c /src/mmcv/ops/roi_align.cpp -o r.o"
        echo good > "$out/mmcv-2.1.0-cp311-cp311-linux_x86_64.whl"
        echo "Saved $out/mmcv-2.1.0-cp311-cp311-linux_x86_64.whl"
        exit 0 ;;
esac
exit 1
'''


@pytest.fixture
def fake(tmp_path):
    state = tmp_path / 'state'
    state.mkdir()
    (state / 'calls').write_text('')
    python = tmp_path / 'fake_python'
    python.write_text(FAKE_PYTHON)
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    constraints = tmp_path / 'constraints.txt'
    constraints.write_text('torch==2.13.0\n')
    cache = tmp_path / 'cache'
    env = dict(
        os.environ,
        # PYTHON is the fake even for the sourcing itself: if the
        # --functions-only guard broke, main would run against the fake.
        PYTHON=str(python),
        FAKE_STATE=str(state),
        CONSTRAINTS=str(constraints),
        TORCH_VERSION='2.13.0',
        MMCV_WHEEL_CACHE=str(cache),
        PATH='/usr/bin:/bin',  # no nvcc: the CPU path
        HEARTBEAT_S='60',
    )
    for var in ('MMCV_FORCE_REBUILD', 'TORCH_CUDA_ARCH_LIST', 'FORCE_CUDA'):
        env.pop(var, None)
    return dict(env=env, state=state, cache=cache,
                wheel_dir=cache / 'torch-2.13.0-cpu')


def bash(snippet, env=None, cwd=None):
    """Run SNIPPET after sourcing the script's functions (under the
    script's own set -euo pipefail). PYTHON is never the real interpreter:
    were the --functions-only guard broken, the install would fail at its
    first step instead of installing into this environment."""
    if env is None:
        env = dict(os.environ, PYTHON=shutil.which('false') or '/bin/false')
    assert env.get('PYTHON', '') not in ('', 'python', 'python3')
    return subprocess.run(
        ['bash', '-c', f'source "{SCRIPT}" --functions-only\n{snippet}'],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=30)


def calls(fake):
    return (fake['state'] / 'calls').read_text().splitlines()


def pip_wheel_calls(fake):
    return [c for c in calls(fake) if c.startswith('-m pip wheel')]


def test_syntax():
    subprocess.run(['bash', '-n', SCRIPT], check=True)


@pytest.mark.skipif(shutil.which('shellcheck') is None,
                    reason='shellcheck is not installed')
def test_shellcheck():
    res = subprocess.run(['shellcheck', '-S', 'warning', SCRIPT],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout


def test_functions_only_runs_nothing(fake):
    res = bash('echo "cache=${CLEANUP[*]-none}"', env=fake['env'])
    assert res.returncode == 0, res.stderr
    assert 'cache=none' in res.stdout  # main (which sets CLEANUP) never ran
    assert calls(fake) == []


@pytest.mark.parametrize('args,key', [
    ('2.13.0', 'torch-2.13.0-cpu'),
    ('2.13.0 ""', 'torch-2.13.0-cpu'),
    ('2.4.1 12.1 "8.0;9.0+PTX"', 'torch-2.4.1-cu121-sm8.0_9.0+PTX'),
    ('2.4.1 12.1 "8.0 9.0"', 'torch-2.4.1-cu121-sm8.0_9.0'),
    ('2.4.1 12.8 "9.0"', 'torch-2.4.1-cu128-sm9.0'),
    ('2.4.1 12.1 ""', 'torch-2.4.1-cu121-sm-default'),
    ('2.4.1 12.1', 'torch-2.4.1-cu121-sm-default'),
    ('2.4.1 12.1 cpu', 'torch-2.4.1-cu121-cpuops'),
    ('2.13.0 "" cpu', 'torch-2.13.0-cpu'),
])
def test_wheel_key(args, key):
    res = bash(f'mmcv_wheel_key {args}')
    assert res.returncode == 0, res.stderr
    assert res.stdout == key + '\n'


def test_wheel_key_needs_torch_version():
    assert bash('mmcv_wheel_key ""').returncode != 0


def test_find_wheel(tmp_path):
    d = tmp_path / 'torch-2.13.0-cpu'
    look = f'find_mmcv_wheel "{d}" 2.1.0 cp311 linux_x86_64'
    assert bash(look).returncode == 1  # no folder
    d.mkdir()
    assert bash(look).returncode == 1  # empty folder
    for name in ('mmcv-2.0.1-cp311-cp311-linux_x86_64.whl',  # version
                 'mmcv-2.1.0-cp310-cp310-linux_x86_64.whl',  # Python
                 'mmcv-2.1.0-cp311-cp311-linux_aarch64.whl',  # platform
                 'mmcv-2.1.0.post1-cp311-cp311-linux_x86_64.whl',
                 WHEEL + '.bad'):
        (d / name).write_text('x')
    (d / WHEEL).write_text('')  # empty: an interrupted copy
    assert bash(look).returncode == 1
    (d / WHEEL).write_text('x')
    res = bash(look)
    assert res.returncode == 0, res.stderr
    assert res.stdout == f'{d / WHEEL}\n'


CANNED = r'''
echo "Collecting mmcv==2.1.0"
echo "  Downloading mmcv-2.1.0.tar.gz (471 kB)"
echo "  some verbose noise"
echo "[1/3] c++ -MMD -MF /b/nms.o.d -pthread -c -c /p/ops/nms.cpp -o /b/nms.o"
printf "[2/3] c++ -c /tmp/p/roi"
sleep 1.5
printf "_align.cpp -o /b/roi_align.o\r\n"
echo "[3/3] /cuda/bin/nvcc --generate-dependencies -c /p/focal_loss.cu -o f.o"
echo "g++ -pthread -shared /b/nms.o -o build/mmcv/_ext.cpython-311.so"
echo "FAILED: /b/x.o"
printf "last line without newline"
'''


def test_progress_filter(tmp_path):
    log = tmp_path / 'build.log'
    res = bash(
        f'gen() {{ {CANNED}\n}}\n'
        f'HEARTBEAT_S=1 run_with_progress "{log}" gen',
        cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    out = res.stdout.splitlines()
    assert '[install]   Collecting mmcv==2.1.0' in out
    assert '[install]   Downloading mmcv-2.1.0.tar.gz (471 kB)' in out
    assert not any('noise' in line for line in out)
    progress = [line for line in out if line.startswith('[install]   [')]
    assert [p.split(' (')[0] for p in progress] == [
        '[install]   [1/3] nms.cpp',
        '[install]   [2/3] roi_align.cpp',  # a line split by the timeout
        '[install]   [3/3] focal_loss.cu',
    ]
    assert all(p.endswith('s)') for p in progress)  # elapsed, e.g. (0m01s)
    beat = [line for line in out if 'still building mmcv' in line]
    assert beat and 'elapsed, 1/3 files compiled' in beat[0]
    assert any(line.startswith('[install]   linking mmcv._ext')
               for line in out)
    assert '[install]   FAILED: /b/x.o' in out
    full = log.read_text().splitlines()
    assert len(full) == 9  # every line, the split one joined, no \r
    assert full[4] == '[2/3] c++ -c /tmp/p/roi_align.cpp -o /b/roi_align.o'
    assert full[-1] == 'last line without newline'


def test_plain_setuptools_lines_count_without_total(tmp_path):
    res = bash(
        'gen() { echo "x86_64-linux-gnu-g++ -c ./mmcv/a.cpp -o a.o"; '
        'echo "x86_64-linux-gnu-g++ -c ./mmcv/b.cpp -o b.o"; }\n'
        f'run_with_progress "{tmp_path}/log" gen')
    assert res.returncode == 0, res.stderr
    assert '[1/?] a.cpp' in res.stdout and '[2/?] b.cpp' in res.stdout


def test_failure_propagates_through_the_filter(tmp_path):
    log = tmp_path / 'log'
    gen = 'gen() { echo "[1/2] c++ -c /x/nms.cpp -o n.o"; exit 7; }\n'
    res = bash(gen + f'rc=0; run_with_progress "{log}" gen || rc=$?\n'
               'echo "rc=$rc"')
    assert 'rc=7' in res.stdout  # the command's status, not the filter's
    assert '[1/2] nms.cpp' in res.stdout
    # Under the script's set -e, a failed build stops the script.
    res = bash(gen + f'run_with_progress "{log}" gen\necho NOT_REACHED')
    assert res.returncode == 7
    assert 'NOT_REACHED' not in res.stdout
    res = bash(f'run_with_progress "{log}" true\necho REACHED')
    assert res.returncode == 0 and 'REACHED' in res.stdout


def test_mmcv_skipped_when_ext_imports(fake):
    (fake['state'] / 'ext_ok').touch()
    res = bash('ensure_mmcv', env=fake['env'])
    assert res.returncode == 0, res.stderr
    assert 'skipping the mmcv build' in res.stdout
    assert not any('pip' in c for c in calls(fake))


def test_mmcv_compiled_then_cached_then_reused(fake):
    res = bash('ensure_mmcv', env=fake['env'])
    assert res.returncode == 0, res.stdout + res.stderr
    wheel_dir = fake['wheel_dir']
    assert f'mmcv wheel cache: {wheel_dir}' in res.stdout
    assert '[1/2] nms.cpp' in res.stdout
    assert '[2/2] roi_align.cpp' in res.stdout
    assert len(pip_wheel_calls(fake)) == 1
    call = pip_wheel_calls(fake)[0]
    for flag in ('-v', '--no-deps', '--no-build-isolation', '--no-cache-dir',
                 'mmcv==2.1.0'):
        assert flag in call.split(), call
    assert (wheel_dir / WHEEL).read_text() == 'good\n'
    assert (wheel_dir / 'mmcv-2.1.0-build.log').is_file()
    # CPU ops, with ninja of $PYTHON's environment first on PATH
    assert (fake['state'] / 'build_env').read_text() == (
        'FORCE_CUDA= ARCHS= PATH1=/fake env/bin\n')
    assert not list(wheel_dir.glob('.build.*'))  # no leftover build folder
    assert (fake['state'] / 'ext_ok').exists()

    # A later run (a fresh environment: mmcv._ext missing) installs the
    # cached wheel and compiles nothing.
    (fake['state'] / 'ext_ok').unlink()
    (fake['state'] / 'calls').write_text('')
    res = bash('ensure_mmcv', env=fake['env'])
    assert res.returncode == 0, res.stdout + res.stderr
    assert f'installing the cached wheel {WHEEL} (no compile)' in res.stdout
    assert pip_wheel_calls(fake) == []
    installs = [c for c in calls(fake) if c.startswith('-m pip install')]
    assert any('--force-reinstall' in c and WHEEL in c for c in installs)
    assert (fake['state'] / 'ext_ok').exists()


def test_wheel_of_another_torch_is_not_used(fake):
    other = fake['cache'] / 'torch-2.12.0-cpu'
    other.mkdir(parents=True)
    (other / WHEEL).write_text('good\n')
    res = bash('ensure_mmcv', env=fake['env'])
    assert res.returncode == 0, res.stdout + res.stderr
    assert len(pip_wheel_calls(fake)) == 1
    assert (fake['wheel_dir'] / WHEEL).is_file()


def test_bad_cached_wheel_is_set_aside_and_rebuilt(fake):
    fake['wheel_dir'].mkdir(parents=True)
    (fake['wheel_dir'] / WHEEL).write_text('bad\n')
    res = bash('ensure_mmcv', env=fake['env'])
    assert res.returncode == 0, res.stdout + res.stderr
    assert 'does not import' in res.stdout
    assert (fake['wheel_dir'] / (WHEEL + '.bad')).read_text() == 'bad\n'
    assert (fake['wheel_dir'] / WHEEL).read_text() == 'good\n'
    assert len(pip_wheel_calls(fake)) == 1
    assert (fake['state'] / 'ext_ok').exists()


def test_force_rebuild_compiles_despite_ext_and_cache(fake):
    (fake['state'] / 'ext_ok').touch()
    fake['wheel_dir'].mkdir(parents=True)
    (fake['wheel_dir'] / WHEEL).write_text('good old\n')
    env = dict(fake['env'], MMCV_FORCE_REBUILD='1')
    res = bash('ensure_mmcv', env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert len(pip_wheel_calls(fake)) == 1
    assert (fake['wheel_dir'] / WHEEL).read_text() == 'good\n'


def test_failed_build_stops_with_the_log_tail(fake):
    (fake['state'] / 'fail_build').touch()
    res = bash('ensure_mmcv\necho NOT_REACHED', env=fake['env'])
    assert res.returncode != 0
    assert 'NOT_REACHED' not in res.stdout
    assert 'the mmcv build failed' in res.stderr
    assert 'fatal error: boom' in res.stderr  # the log's tail
    assert '[install]   FAILED: roi_align.o' in res.stdout
    assert not (fake['wheel_dir'] / WHEEL).exists()
    assert not (fake['state'] / 'ext_ok').exists()


@pytest.mark.skipif(shutil.which('nvcc', path='/usr/bin:/bin') is not None,
                    reason='nvcc in /usr/bin: cannot hide the CUDA toolchain')
def test_cuda_torch_without_nvcc_builds_cpu_ops(fake):
    env = dict(fake['env'], FAKE_TORCH_CUDA='12.8')
    res = bash('ensure_mmcv', env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert 'with CPU ops' in res.stdout
    assert (fake['state'] / 'build_env').read_text() == (
        'FORCE_CUDA= ARCHS= PATH1=/fake env/bin\n')
    assert (fake['cache'] / 'torch-2.13.0-cu128-cpuops' / WHEEL).is_file()


@pytest.mark.parametrize('archs,key', [('9.0', 'torch-2.13.0-cu128-sm9.0'),
                                       ('', 'torch-2.13.0-cu128-sm-default')])
def test_cuda_ops_keyed_on_cuda_and_archs(fake, tmp_path, archs, key):
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    nvcc = bin_dir / 'nvcc'
    nvcc.write_text('#!/bin/sh\nexit 0\n')
    nvcc.chmod(0o755)
    env = dict(fake['env'], FAKE_TORCH_CUDA='12.8',
               PATH=f'{bin_dir}:/usr/bin:/bin')
    if archs:
        env['TORCH_CUDA_ARCH_LIST'] = archs
    res = bash('ensure_mmcv', env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert 'with CUDA ops' in res.stdout
    assert (fake['state'] / 'build_env').read_text() == (
        f'FORCE_CUDA=1 ARCHS={archs} PATH1=/fake env/bin\n')
    assert (fake['cache'] / key / WHEEL).is_file()
