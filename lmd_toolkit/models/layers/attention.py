"""Old import path (tools import it); the layers live in ``lmd_layers``."""
from .lmd_layers import Attention, Block, Mlp  # noqa: F401
