"""The one JSON schema of kompose's output (docs/json.md).

Every document kompose prints under --json is one object with ``schema_version`` and ``kind``
(what it is: "stacks", "dumps", "status", "hooks", "hooks_check", "cron", "cron_install",
"cron_check", "plan", "result", "error"). A stack's name is ``stack`` wherever one appears, hook
points are named as in text (``pre_up``), and times are ISO-8601 UTC strings
(``2026-12-01T16:32:05Z``): ``document`` converts the values of the time keys (TIME_KEYS) and every
string that is an ISO date and time.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

SCHEMA_VERSION = 1

# keys whose values are times, anywhere in a document
TIME_KEYS = frozenset({"time", "timestamp", "dump_time", "last_drill", "next_run", "due_since", "created", "at",
                       "started", "finished", "generated_at"})


def iso_utc(value: Any) -> Any:
    """An ISO-8601 UTC time ('2026-12-01T16:32:05Z') from a datetime (naive = local time), a Unix
    time or an ISO string; None, and a string that is not a time, stay as they are."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    elif isinstance(value, (int, float)):
        value = datetime.fromtimestamp(value, timezone.utc)
    if not isinstance(value, datetime):
        return value
    if value.tzinfo is None:
        value = value.astimezone()
    return value.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


_ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def _times(data: Any) -> Any:
    """Every time in ``data`` as ISO-8601 UTC: the values of TIME_KEYS (a datetime, a Unix time, an
    ISO string) and any other string that is an ISO date and time (a key a room added: last_success)."""
    if isinstance(data, dict):
        return {key: iso_utc(value) if key in TIME_KEYS and not isinstance(value, (dict, list)) else _times(value)
                for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [_times(item) for item in data]
    if isinstance(data, str) and _ISO_TIME.match(data):
        return iso_utc(data)
    if isinstance(data, datetime):
        return iso_utc(data)
    return data


def document(kind: str, **fields: Any) -> dict[str, Any]:
    """A top-level JSON document: ``{"schema_version": 1, "kind": kind, **fields}``, times in UTC."""
    return {"schema_version": SCHEMA_VERSION, "kind": kind, **_times(fields)}
