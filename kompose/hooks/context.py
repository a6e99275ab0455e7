"""The context hooks share within one run: a run id, and a KEY=VALUE file per stack (and one for the
run-wide hooks) that hooks append to and later hooks receive as environment variables."""

from __future__ import annotations

import re
import secrets
import shutil
import tempfile
import time
from pathlib import Path

_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
# values a hook may not override: they describe the run, not the hook's findings
PROTECTED_PREFIXES = ("KOMPOSE_",)
PROTECTED = frozenset({"SCRIPT_DIR", "stack", "PATH", "HOME"})
MAX_BYTES = 1 << 20  # a context is for small facts; a runaway writer must not grow memory


def new_run_id() -> str:
    """A run id that sorts by time and is unique on the host: 20240131T030000-1a2b3c."""
    return time.strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


class RunFiles:
    """The run's private directory holding the context files; removed by close()."""

    def __init__(self, run_id: str):
        self.run_id = run_id
        self.directory = Path(tempfile.mkdtemp(prefix=f"kompose-{run_id}-"))

    def context_file(self, name: str) -> Path:
        """An empty context file for ``name`` (a stack, or '' for the run-wide hooks)."""
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "_run"
        path = self.directory / f"{safe}.env"
        path.touch()
        return path

    def close(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def read(path: Path | None) -> dict[str, str]:
    """The KEY=VALUE lines of a context file (later lines win). Other lines, protected keys and
    anything past the first MiB are ignored; a missing file is empty."""
    if path is None:
        return {}
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_BYTES)
    except OSError:
        return {}
    values: dict[str, str] = {}
    for line in data.decode("utf-8", "replace").splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        key, value = match.groups()
        if key in PROTECTED or key.startswith(PROTECTED_PREFIXES):
            continue
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values
