"""Remembers which hooks.sh contents already passed ``bash -n``, so a run does not re-check them.

Every plan checks its stack's hooks.sh first; one ``bash -n`` costs 3-9 ms (a fork and exec
of bash), which is most of a dry-run over a few hundred stacks. A file whose exact bytes
passed before, with the same bash binary, passes again: the cache holds one key per line,
sha256 of (bash's identity, the file's bytes), in ``$XDG_CACHE_HOME/kompose/bash-n-ok``
(``~/.cache/...``). Only passes are remembered; a failure is re-checked every time. When
the cache cannot be read or written, everything is simply checked.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

CACHE_NAME = "bash-n-ok"
MAX_ENTRIES = 4096  # then the file is cut to its newest half

_known: set[str] | None = None


def cache_file() -> Path | None:
    base = os.environ.get("XDG_CACHE_HOME") or (os.path.join(os.environ["HOME"], ".cache") if os.environ.get("HOME") else "")
    return Path(base) / "kompose" / CACHE_NAME if base else None


def _bash_identity() -> str:
    bash = shutil.which("bash") or "bash"
    try:
        st = os.stat(bash)
        return f"{bash}:{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"
    except OSError:
        return bash


def key(content: bytes) -> str:
    return hashlib.sha256(_bash_identity().encode() + b"\0" + content).hexdigest()


def _load() -> set[str]:
    global _known
    if _known is None:
        path = cache_file()
        try:
            _known = set(path.read_text().split()) if path else set()
        except (OSError, UnicodeDecodeError):
            _known = set()
    return _known


def passed(content: bytes) -> bool:
    """True when these exact bytes passed ``bash -n`` before (with this bash)."""
    return key(content) in _load()


def remember(content: bytes) -> None:
    """Record that ``content`` passed ``bash -n``. Never raises."""
    entry = key(content)
    known = _load()
    if entry in known:
        return
    known.add(entry)
    path = cache_file()
    if path is None:
        return
    from kompose.host.files import write_atomically

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # one short append is atomic: parallel runs never interleave lines
        with open(path, "a", encoding="ascii") as handle:
            handle.write(entry + "\n")
        if path.stat().st_size > MAX_ENTRIES * 65:
            lines = path.read_text().split()
            write_atomically(path, "\n".join(lines[-MAX_ENTRIES // 2 :]) + "\n", durable=False,
                             partial=path.with_name(f"{CACHE_NAME}.{os.getpid()}.tmp"))
    except OSError:
        pass
