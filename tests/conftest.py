"""Fixtures shared by the test modules."""
import pytest
import torch


@pytest.fixture(scope='module')
def single_thread():
    """One torch thread for a module's tests: encodes and tiny models are
    bit-identical from run to run, and faster than on two shared cores.
    Use with ``pytestmark = pytest.mark.usefixtures('single_thread')``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
