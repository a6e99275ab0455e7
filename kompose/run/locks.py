"""The per-stack lock taken by operations that write (filelock: the kernel frees it when a holder dies)."""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from filelock import FileLock, Timeout

from kompose.errors import KomposeError, LockedError

LOCK_NAME = ".kompose.lock"
INFO_NAME = ".kompose.lock.info"  # who holds it; a side file because the lock file is truncated on open


def _holder(directory: Path) -> str:
    try:
        pid, since = (directory / INFO_NAME).read_text().split()[:2]
        return f"locked by pid {pid} since {since}"
    except (OSError, ValueError):
        return "locked by another kompose run"


@contextmanager
def stack_lock(directory: Path, timeout: float = 0) -> Iterator[None]:
    """Hold the stack's lock, waiting up to ``timeout`` seconds. Raises LockedError when it is held,
    KomposeError when it cannot be taken at all (a read-only filesystem)."""
    lock = FileLock(str(directory / LOCK_NAME), mode=0o600)
    try:
        lock.acquire(timeout=timeout, poll_interval=0.1)
    except Timeout:
        raise LockedError(_holder(directory)) from None
    except OSError as exc:  # a read-only or full filesystem
        raise KomposeError(f"cannot take the stack's lock {directory / LOCK_NAME}: {exc.strerror or exc}") from None
    try:
        try:
            (directory / INFO_NAME).write_text(f"{os.getpid()} {time.strftime('%H:%M:%S')}\n")
        except OSError:
            pass  # a full disk: the lock holds all the same, only the holder's name is not told
        yield
    finally:
        lock.release()
