"""Files that appear whole or not at all: written beside, fsynced, then renamed into place."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_rename(src: Path, dst: Path) -> None:
    """Make ``src`` durable and give it its final name atomically."""
    with open(src, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(src, dst)
    dir_fd = os.open(dst.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_atomically(path: Path, data: str | bytes, mode: int | None = None, partial: Path | None = None,
                     durable: bool = True) -> None:
    """Write ``path`` so that readers see the old content or the new, never a part: ``partial``
    (default ``.<name>.partial`` beside it), optionally chmod ``mode``, fsync, rename. The partial is
    removed when anything fails; OSError is raised for the caller to word. ``durable`` False skips
    the fsyncs (a cache that may be lost, never half-written)."""
    partial = partial or path.with_name(f".{path.name}.partial")
    raw = data.encode() if isinstance(data, str) else data
    try:
        with open(partial, "wb") as handle:
            handle.write(raw)
            if mode is not None:
                os.fchmod(handle.fileno(), mode)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        if durable:
            fsync_rename(partial, path)
        else:
            os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
