"""What identifies a projector's latents: the fingerprint a latent cache
records and the model checks (``BaseProjector.fingerprint``)."""
import hashlib
import math
import os
import os.path as osp
from typing import Dict, Optional, Tuple

#: Fields of a fingerprint that must agree between a cache and the projector
#: that trains on it (the checkpoint *path* may differ: its hash decides).
CHECKED_FIELDS = ('type', 'preset', 'arch', 'options', 'checkpoint_sha256',
                  'scale_factor')

# (absolute path, size, mtime) -> SHA-256, so a checkpoint is hashed once
# per process.
_SHA256_CACHE: Dict[Tuple[str, int, float], str] = {}


class LatentCacheMismatchError(ValueError):
    """Latents (a cache) were made by another projector or request."""


def checkpoint_sha256(path: str) -> str:
    """SHA-256 of a checkpoint file, or of every file of a folder (diffusers
    format: relative paths and contents, in sorted order)."""
    if not osp.exists(path):
        raise FileNotFoundError(f'Projector checkpoint not found: {path}')
    path = osp.abspath(path)
    if osp.isdir(path):
        files = sorted(
            osp.join(root, name) for root, _, names in os.walk(path)
            for name in names)
    else:
        files = [path]
    stats = [os.stat(f) for f in files]
    key = (path, sum(s.st_size for s in stats),
           max((s.st_mtime for s in stats), default=0.0))
    if key in _SHA256_CACHE:
        return _SHA256_CACHE[key]
    digest = hashlib.sha256()
    for name in files:
        if osp.isdir(path):
            digest.update(osp.relpath(name, path).encode() + b'\0')
        with open(name, 'rb') as f:
            for block in iter(lambda: f.read(1 << 20), b''):
                digest.update(block)
    _SHA256_CACHE[key] = digest.hexdigest()
    return _SHA256_CACHE[key]


def same_field(field: str, a, b) -> bool:
    """Whether two fingerprint values agree (scale factors to 1e-6)."""
    if field == 'scale_factor' and a is not None and b is not None:
        return math.isclose(a, b, rel_tol=1e-6)
    return a == b


def fingerprint_differences(source: dict, own: dict,
                            fields=CHECKED_FIELDS) -> list:
    """``(field, source value, own value)`` of every field that differs."""
    return [(f, source.get(f), own.get(f)) for f in fields
            if not same_field(f, source.get(f), own.get(f))]


def format_mismatch(source: dict, own: dict, where: str) -> Optional[str]:
    """The error text naming both fingerprints, or None when they agree."""
    wrong = fingerprint_differences(source, own)
    if not wrong:
        return None
    lines = '\n'.join(f"  {f}: {where} has {a!r}, the model's projector "
                      f'has {b!r}' for f, a, b in wrong)

    def show(fp: dict) -> str:
        return ', '.join(f'{f}={fp.get(f)!r}' for f in CHECKED_FIELDS)

    return (f"The {where} was encoded by another projector than the "
            f"model's:\n{lines}\n  {where} fingerprint: {show(source)}\n"
            f"  projector fingerprint: {show(own)}\nTrain with the "
            f"projector config the cache was made with (its manifest's "
            f"'projector' entry), or let the run rebuild the cache: point "
            f'the dataset at a new cache_dir (or delete this one).')
