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

from kompose.host.files import DUMP_MODE

MARK_FILE = ".kompose-swap.json"


def mark_path(directory: Path) -> Path:
    return directory / MARK_FILE


def write_mark(path: Path, what: str) -> None:
    record = {"at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "pid": os.getpid(), "step": what}
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, DUMP_MODE)
    with open(fd, "w", encoding="utf-8") as handle:
        os.fchmod(fd, DUMP_MODE)
        handle.write(json.dumps(record) + "\n")
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
