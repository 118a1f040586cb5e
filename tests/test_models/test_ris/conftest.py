"""One torch thread for the RIS tests: many small complex ``eigh`` calls
ran up to ~300x slower with 2 threads than with 1 on a busy 2-core
machine. Restored after each test."""
import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
