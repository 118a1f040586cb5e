"""The command-line tools in ``tools/`` as modules, for tests that call
their functions (``main(argv)``, ``build_cfg``) in-process, and scripts
run as a user runs them."""
import functools
import importlib.util
import os
import os.path as osp
import subprocess
import sys
from types import ModuleType

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOY_CONFIG = osp.join(REPO, 'tests', 'data', 'configs', 'toy_regression.py')


@functools.lru_cache(maxsize=None)
def load_tool(name: str) -> ModuleType:
    """``tools/<name>.py``, loaded once per test process."""
    spec = importlib.util.spec_from_file_location(
        f'tool_{name}', osp.join(REPO, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_script(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """``python *args`` from the repository root on one thread, as a user
    runs a tool or benchmark; fails the test with its output unless it
    exits 0."""
    proc = subprocess.run([sys.executable, *args],
                          cwd=REPO,
                          env=dict(os.environ, OMP_NUM_THREADS='1'),
                          capture_output=True,
                          text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc
