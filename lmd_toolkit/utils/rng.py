"""The process's global random states, as one value to save and restore."""
import contextlib
import random
from typing import Iterator

import numpy as np
import torch

__all__ = ['rng_state', 'set_rng_state', 'preserved_rng_state']


def rng_state() -> dict:
    """The global random states of Python, numpy, torch (and CUDA, once it
    is initialised), in types the safe checkpoint loader accepts."""
    state = dict(python=random.getstate(), numpy=np.random.get_state(),
                 torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore :func:`rng_state`'s result."""
    random.setstate(state['python'])
    np.random.set_state(state['numpy'])
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


@contextlib.contextmanager
def preserved_rng_state() -> Iterator[None]:
    """Run a block without changing the global random states (e.g. encoding
    a latent cache, which happens in a first run but not in a second)."""
    state = rng_state()
    try:
        yield
    finally:
        set_rng_state(state)
