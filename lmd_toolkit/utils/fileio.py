"""Writes that never leave a half-written file, and reads that say which file
failed, what it is for and what to do (docs/en/reliability.md).

Every file the toolkit writes for later use (checkpoints, ``last_checkpoint``,
cache manifests, result JSONs, PNGs) goes through :func:`atomic_write`: the
bytes go to a temporary file beside the target, are flushed to disk, and
replace the target in one ``os.replace``. A crash, a ``SIGKILL`` or a full
disk leaves either the old file or the new one, never a mixture.
"""
import contextlib
import os
import os.path as osp
import pickle
import zipfile
from typing import IO, Iterator, Optional, Tuple

import torch

__all__ = [
    'UnreadableFileError', 'atomic_write', 'atomic_torch_save',
    'safe_torch_load', 'checkpoint_integrity'
]


class UnreadableFileError(RuntimeError):
    """A file the toolkit needs is missing, truncated or not what it should
    be. The message names the file, its role and the fix."""

    def __init__(self, path: str, role: str, problem: str, fix: str) -> None:
        self.path, self.role, self.problem, self.fix = path, role, problem, fix
        super().__init__(f'{role} {path!r} {problem}. {fix}')

    def __reduce__(self):  # picklable, e.g. to send it to other ranks
        return type(self), (self.path, self.role, self.problem, self.fix)


def _temporary_name(path: str) -> str:
    head, tail = osp.split(osp.abspath(path))
    return osp.join(head, f'.{tail}.tmp{os.getpid()}')


def _remove_stale_temporaries(path: str) -> None:
    """Delete temporaries of ``path`` left by processes that died while
    writing it (their PID is in the name and no longer runs)."""
    head, tail = osp.split(osp.abspath(path))
    prefix = f'.{tail}.tmp'
    for name in os.listdir(head):
        pid = name[len(prefix):]
        if not (name.startswith(prefix) and pid.isdigit()):
            continue
        try:
            os.kill(int(pid), 0)
            continue  # a live process is writing it
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        with contextlib.suppress(OSError):
            os.remove(osp.join(head, name))


@contextlib.contextmanager
def atomic_write(path: str,
                 mode: str = 'w',
                 encoding: Optional[str] = None) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on a clean exit flush it to
    disk and rename it to ``path``; on an exception delete it (``path`` is
    untouched).

    Args:
        path (str): Target file. Its folder is created if missing.
        mode (str): ``'w'`` (text) or ``'wb'`` (bytes). Defaults to 'w'.
        encoding (str, optional): Text encoding. Defaults to utf-8 for text.

    Yields:
        IO: The open temporary file.
    """
    if mode not in ('w', 'wb'):
        raise ValueError(f"atomic_write: mode must be 'w' or 'wb', got "
                         f'{mode!r}.')
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = _temporary_name(path)
    if mode == 'w' and encoding is None:
        encoding = 'utf-8'
    try:
        with open(tmp, mode, encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _remove_stale_temporaries(path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_torch_save(obj, path: str) -> None:
    """``torch.save(obj, path)`` through :func:`atomic_write`."""
    with atomic_write(path, 'wb') as f:
        torch.save(obj, f)


def checkpoint_integrity(path: str) -> Tuple[bool, str]:
    """Whether a ``torch.save`` file is complete: a readable zip archive whose
    every member matches its CRC. Reads the whole file, no unpickling.

    Returns:
        tuple: ``(True, '')`` or ``(False, reason)``.
    """
    if not osp.isfile(path):
        return False, 'does not exist'
    if osp.getsize(path) == 0:
        return False, 'is empty (0 bytes)'
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        return False, f'is truncated or not a torch.save file ({e})'
    if bad is not None:
        return False, f'is corrupt (member {bad!r} fails its CRC check)'
    return True, ''


def safe_torch_load(path: str,
                    role: str = 'Checkpoint',
                    fix: str = 'Check the path, or write the file again.',
                    map_location='cpu',
                    mmap: bool = False):
    """``torch.load(path, weights_only=True)`` (explicitly, so that no
    environment variable can turn the safe loader off), with one readable
    error for a missing, empty, truncated or non-tensor file.

    Args:
        path (str): The file.
        role (str): What the file is for, e.g. ``'Training checkpoint'``;
            starts the error message.
        fix (str): What the user should do; ends the error message.
        map_location: As for ``torch.load``. Defaults to 'cpu'.
        mmap (bool): Map the tensors instead of reading them (cheap access to
            metadata of a large file). Defaults to False.

    Returns:
        The loaded object.

    Raises:
        UnreadableFileError: Naming the file, its role and ``fix``.
    """
    if not osp.isfile(path):
        raise UnreadableFileError(path, role, 'does not exist', fix)
    if osp.getsize(path) == 0:
        raise UnreadableFileError(path, role, 'is empty (0 bytes)', fix)
    try:
        return torch.load(
            path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        first = next((ln for ln in lines if 'Unsupported' in ln or
                      'GLOBAL' in ln), lines[0] if lines else '')
        first = first.replace('WeightsUnpickler error: ', '')[:200]
        raise UnreadableFileError(
            path, role, 'holds Python objects that the safe loader '
            f'(weights_only=True) refuses to run ({first})',
            'Load only files you trust, as tensors: re-save the state dict '
            'with torch.save(model.state_dict(), path).') from e
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError,
            ValueError) as e:
        ok, reason = checkpoint_integrity(path)
        problem = reason if not ok else f'cannot be read ({e})'
        raise UnreadableFileError(path, role, problem, fix) from e
