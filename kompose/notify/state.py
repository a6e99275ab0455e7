"""Each stack's last run per operation, in ``<stack>/.kompose-last-run.json``.

It lets the next run see a recovery (failed last time, ok now) and lets `kompose status`
say "failed its last run" without a log to parse. Written atomically (0600); an unreadable
file counts as no history.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from kompose.host.files import DUMP_MODE, write_atomically

STATE_FILE = ".kompose-last-run.json"


def read(directory: Path) -> dict[str, dict]:
    """{operation: record} of one stack; {} when there is none or it is unreadable."""
    try:
        data = json.loads((directory / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {op: record for op, record in data.items() if isinstance(record, dict) and "status" in record}


def record(directory: Path, operation: str, entry: dict) -> dict | None:
    """Store ``entry`` as the stack's last ``operation``; returns the previous record of it.

    ``entry`` carries status, at, exit_code, error, duration, bytes; last_success is kept
    from the previous record when this run failed. Raises OSError when the file cannot be written.
    """
    data = read(directory)
    previous = data.get(operation)
    entry = dict(entry)
    if entry.get("status") == "ok":
        entry["last_success"] = entry.get("at")
    elif previous and previous.get("last_success"):
        entry["last_success"] = previous["last_success"]
    data[operation] = entry
    path = directory / STATE_FILE
    # a partial of this process's own: two runs of one stack (export, cleanup) may finish together
    write_atomically(path, json.dumps(data, indent=2, sort_keys=True) + "\n", mode=DUMP_MODE,
                     partial=path.with_name(f".{path.name}.{os.getpid()}.partial"))
    return previous
