"""The mark a swap leaves in the stack directory while the live database may refuse connections.

Written before kompose closes the live database, removed once it is open again (the swap
succeeded, a clean-up reopened it, or the next run's recovery did). A mark that outlives its
run means kompose was killed (SIGKILL, a power cut) with the database closed: ``kompose
status`` flags the stack until any db command on it runs the recovery, which reopens it.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

MARK_FILE = ".kompose-swap.json"


def mark_path(directory: Path) -> Path:
    return directory / MARK_FILE


def write_mark(path: Path, what: str) -> None:
    record = {"at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "pid": os.getpid(), "step": what}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def clear_mark(path: Path) -> None:
    path.unlink(missing_ok=True)


def read_mark(directory: Path) -> dict | None:
    """The mark an interrupted swap left, or None."""
    path = mark_path(directory)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        return record if isinstance(record, dict) else {"at": "?"}
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"at": "?"}
