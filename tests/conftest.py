"""Fixtures shared across the test packages."""
import pytest
import torch


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
