"""Files that appear whole or not at all: written beside, fsynced, then renamed into place."""

from __future__ import annotations

import os
from pathlib import Path

# dumps, manifests and kompose's state files: only kompose's user may read them, whatever the
# umask (a dump holds every row of the database)
DUMP_MODE = 0o600


def make_private_dir(directory: Path) -> bool:
    """Create ``directory`` (and its parents) mode 0700 when it is missing (a stack's
    KOMPOSE_DUMP_DIR); True when it was made. Raises OSError for the caller to word."""
    if directory.is_dir():
        return False
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    return True


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

    def opener(name: str, flags: int) -> int:  # never readable by others meanwhile, when ``mode`` is stricter
        return os.open(name, flags, 0o666 if mode is None else mode)

    try:
        with open(partial, "wb", opener=opener) as handle:
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
