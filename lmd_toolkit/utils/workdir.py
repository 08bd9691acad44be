"""One training run per work dir, and resumption from an intact checkpoint
(docs/en/reliability.md)."""
import contextlib
import datetime
import fcntl
import glob
import json
import logging
import os
import os.path as osp
import re
import socket
import sys
from typing import Iterator, List, Optional

from mmengine.logging import print_log

from .fileio import UnreadableFileError, checkpoint_integrity

__all__ = [
    'WorkDirLockedError', 'work_dir_lock', 'find_resume_checkpoint',
    'LOCK_NAME'
]

LOCK_NAME = '.lmd_train.lock'


class WorkDirLockedError(RuntimeError):
    """Another live process trains in the same work dir."""


def _read_owner(f) -> dict:
    f.seek(0)
    try:
        return json.loads(f.read() or '{}')
    except ValueError:
        return {}


@contextlib.contextmanager
def work_dir_lock(work_dir: str) -> Iterator[str]:
    """Hold ``<work_dir>/.lmd_train.lock`` for the duration of a run.

    The lock is an ``fcntl.flock`` on the file, which the kernel releases
    when the process ends however it ends; the file records the holder's
    PID, host, start time and command for the message. A second run in the
    same work dir raises :class:`WorkDirLockedError` naming the first one's
    PID; a lock file left by a process that is gone is taken over with a
    warning. Only rank 0 of a distributed run takes the lock (``RANK``).

    Args:
        work_dir (str): The run's work dir (created if missing).

    Yields:
        str: The lock file's path.
    """
    if int(os.environ.get('RANK', '0')) != 0:
        yield ''
        return
    os.makedirs(work_dir, exist_ok=True)
    path = osp.join(work_dir, LOCK_NAME)
    f = open(path, 'a+')
    try:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            owner = _read_owner(f)
            raise WorkDirLockedError(
                f'Work dir {work_dir!r} is in use by another training run: '
                f'PID {owner.get("pid", "?")} on {owner.get("host", "?")}, '
                f'started {owner.get("started", "?")} '
                f'({owner.get("command", "?")}). Two runs in one work dir '
                'would write into each other\'s checkpoints and logs. Wait '
                'for it to finish, stop it, or pass another --work-dir.'
            ) from None
        stale = _read_owner(f)
        if stale.get('pid') and stale.get('pid') != os.getpid():
            print_log(
                f'{path}: took over the lock of PID {stale["pid"]} on '
                f'{stale.get("host", "?")} (started {stale.get("started")}), '
                'which is no longer running.',
                logger='current', level=logging.WARNING)
        f.seek(0)
        f.truncate()
        json.dump(
            dict(pid=os.getpid(), host=socket.gethostname(),
                 started=datetime.datetime.now().isoformat(timespec='seconds'),
                 command=' '.join(sys.argv)), f)
        f.flush()
        try:
            yield path
        finally:
            with contextlib.suppress(OSError):
                os.remove(path)
            fcntl.flock(f, fcntl.LOCK_UN)
    finally:
        f.close()


def _checkpoints(folder: str) -> List[str]:
    """``iter_N.pth`` / ``epoch_N.pth`` in ``folder``, newest step first."""
    found = []
    for path in glob.glob(osp.join(folder, '*.pth')):
        m = re.fullmatch(r'(iter|epoch)_(\d+)\.pth', osp.basename(path))
        if m:
            found.append((int(m.group(2)), path))
    return [p for _, p in sorted(found, reverse=True)]


def find_resume_checkpoint(work_dir: str,
                           requested: Optional[str] = 'auto'
                           ) -> Optional[str]:
    """The checkpoint that ``--resume`` should continue from, checked whole.

    ``'auto'``: the file ``<work_dir>/last_checkpoint`` names, if intact;
    otherwise (missing, truncated, corrupt) the newest intact ``iter_N`` /
    ``epoch_N`` checkpoint beside it, with a warning; None when the work dir
    has no checkpoint at all (training starts from scratch, as in mmengine).
    A path: that file, which must be intact.

    Args:
        work_dir (str): The run's work dir.
        requested (str, optional): ``'auto'`` or a checkpoint path.

    Returns:
        str | None: The checkpoint path.

    Raises:
        UnreadableFileError: The requested file, or every checkpoint found,
            is missing or damaged (names the file and the intact
            alternative, if any).
    """
    if requested not in (None, 'auto'):
        ok, reason = checkpoint_integrity(requested)
        if ok:
            return requested
        intact = next((p for p in _checkpoints(osp.dirname(requested) or '.')
                       if checkpoint_integrity(p)[0]), None)
        fix = (f'Resume from {intact!r}, the newest intact checkpoint beside '
               'it, or pass --resume without a path to pick it.'
               if intact else 'Pass an intact checkpoint.')
        raise UnreadableFileError(requested, 'Checkpoint to resume from',
                                  reason, fix)
    pointer = osp.join(work_dir, 'last_checkpoint')
    named = None
    if osp.isfile(pointer):
        with open(pointer) as f:
            named = f.read().strip() or None
    candidates = _checkpoints(work_dir)
    if named is None and not candidates:
        return None
    if named is not None:
        ok, reason = checkpoint_integrity(named)
        if ok:
            return named
    else:
        reason = 'is missing'
    problems = []
    for path in candidates:
        if path == named:
            continue
        ok, why = checkpoint_integrity(path)
        if ok:
            print_log(
                f'Resume: {pointer} names {named!r}, which {reason}; '
                f'resuming from {path}, the newest intact checkpoint.',
                logger='current', level=logging.WARNING)
            return path
        problems.append(f'{osp.basename(path)} {why}')
    raise UnreadableFileError(
        named or pointer, 'Checkpoint to resume from', reason +
        (f'; no intact checkpoint beside it ({"; ".join(problems)})'
         if problems else '; no other checkpoint in the work dir'),
        'Start again without --resume, or restore a checkpoint file.')
