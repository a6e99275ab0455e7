"""The per-stack lock taken by operations that write: flock(2) on a file in the stack's dump
directory (the kernel frees it when its holder dies). Taken with fcntl directly: the filelock
package's import (≈ 20 ms, paid by every db command) bought nothing more here."""

from __future__ import annotations

import errno
import fcntl
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from kompose.errors import KomposeError, LockedError

LOCK_NAME = ".kompose.lock"
INFO_NAME = ".kompose.lock.info"  # who holds it; a side file because the lock file is truncated on open
POLL = 0.1  # seconds between tries while another run holds it


def _holder(directory: Path) -> str:
    try:
        pid, since = (directory / INFO_NAME).read_text().split()[:2]
        return f"locked by pid {pid} since {since}"
    except (OSError, ValueError):
        return "locked by another kompose run"


def _try_lock(path: Path) -> int | None:
    """The open, locked file descriptor, or None while another process holds the lock."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return None
        raise
    if os.fstat(fd).st_nlink == 0:  # removed between our open and our lock: lock the new file
        os.close(fd)
        return _try_lock(path)
    return fd


@contextmanager
def stack_lock(directory: Path, timeout: float = 0) -> Iterator[None]:
    """Hold the stack's lock, waiting up to ``timeout`` seconds. Raises LockedError when it is held,
    KomposeError when it cannot be taken at all (a read-only filesystem)."""
    deadline = time.monotonic() + timeout
    try:
        while (fd := _try_lock(directory / LOCK_NAME)) is None:
            if time.monotonic() >= deadline:
                raise LockedError(_holder(directory))
            time.sleep(POLL)
    except OSError as exc:  # a read-only or full filesystem
        raise KomposeError(f"cannot take the stack's lock {directory / LOCK_NAME}: {exc.strerror or exc}") from None
    try:
        try:
            (directory / INFO_NAME).write_text(f"{os.getpid()} {time.strftime('%H:%M:%S')}\n")
        except OSError:
            pass  # a full disk: the lock holds all the same, only the holder's name is not told
        yield
    finally:
        os.close(fd)  # closing the last descriptor releases the flock
