"""Fixtures shared across the test packages."""
import os

import pytest
import torch

from engine_plugins.compat import apply_runtime_fixes

# The tests exercise the tools' behaviour, so they run with the fixes the
# tools apply (importing the package alone applies none).
apply_runtime_fixes()

# setup.cfg runs the suite in two pytest-xdist workers (CI has two cores).
# One thread each, for the processes they start too: more threads than
# cores made small complex ``eigh`` calls up to ~300x slower (see below).
if os.environ.get('PYTEST_XDIST_WORKER'):
    os.environ['OMP_NUM_THREADS'] = '1'
    torch.set_num_threads(1)


@pytest.fixture
def one_torch_thread():
    """Run a test on one torch thread, restored afterwards.

    Many small complex ``eigh`` calls (the RIS tests) ran up to ~300x
    slower with 2 threads than with 1 on a busy 2-core machine.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
