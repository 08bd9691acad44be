"""Small argument helpers."""
from typing import Sequence, Tuple, Union


def to_2tuple(size: Union[int, Sequence[int]], key: str) -> Tuple[int, int]:
    """``28`` -> ``(28, 28)``; an ``(h, w)`` pair -> ``(h, w)``.

    ``key`` names the config key in the error raised for anything else.
    """
    if isinstance(size, int):
        return size, size
    if isinstance(size, Sequence) and len(size) == 2:
        return int(size[0]), int(size[1])
    raise TypeError(f'{key} must be an int or an (h, w) pair, got {size!r}.')
