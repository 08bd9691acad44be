"""Old import path (``evaluation.baselines`` imports it)."""
from .helpers import unpatchify  # noqa: F401
from .lmd_layers import patchify  # noqa: F401
