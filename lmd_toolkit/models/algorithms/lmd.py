"""Old module path; the algorithm lives in ``lmd_toolkit/models/lmd_vit.py``."""
from ..lmd_vit import LatentMaskingDiffusion  # noqa: F401
