"""Files that appear whole or not at all: fsync, then rename into place."""

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
