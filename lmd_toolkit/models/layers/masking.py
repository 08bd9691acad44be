"""Old import path; masking lives in ``lmd_layers`` (helpers for inference)."""
from .helpers import ids_from_mask, seeded_generators  # noqa: F401
from .lmd_layers import Generators, num_kept_tokens, random_masking  # noqa
