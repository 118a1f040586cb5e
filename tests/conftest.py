"""Fixtures shared across the test packages."""
import pytest
import torch

from engine_plugins.compat import apply_runtime_fixes

# The tests exercise the tools' behaviour, so they run with the fixes the
# tools apply (importing the package alone applies none).
apply_runtime_fixes()


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
