"""What kompose last copied into each repository of a stack: ``<stack>/.kompose-copies.json``.

Written after each successful copy (under the stack's lock), read by ``status`` and
``cron --check`` without asking the repositories (which may be slow or down). Repositories
are keyed by their masked string: no credential is ever written here.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Mapping

from kompose.host.files import DUMP_MODE, write_atomically
from kompose.repositories import restic

STATE = ".kompose-copies.json"


def read(directory: Path) -> dict[str, dict]:
    """{masked repository: {"dump", "dump_time", "copied_at", "snapshot"}}; {} when none or unreadable."""
    try:
        data = json.loads((directory / STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) else {}


def record(directory: Path, repository: str, dump: str, dump_time: datetime, snapshot: str, copied_at: str) -> None:
    """Remember the newest copy in ``repository`` (masked); an older dump never replaces a newer one."""
    data = read(directory)
    old = data.get(repository)
    if old and old.get("dump_time", "") > dump_time.isoformat(timespec="seconds"):
        return
    data[repository] = {"dump": dump, "dump_time": dump_time.isoformat(timespec="seconds"), "copied_at": copied_at,
                        "snapshot": snapshot}
    write_atomically(directory / STATE, json.dumps(data, indent=2) + "\n", mode=DUMP_MODE)


def newest_copies(directory: Path, env: Mapping[str, str]) -> list[dict]:
    """Per configured repository (masked): its newest copy as recorded, or None for the record."""
    try:
        found = restic.parse_repositories(env.get(restic.SETTING))
    except Exception:  # a bad setting is the planning's error to report, not status's
        return []
    data = read(directory)
    return [{"repository": r.masked, **(data.get(r.masked) or {"dump": None, "dump_time": None})} for r in found]
