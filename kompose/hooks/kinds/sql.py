"""SQL hooks: ``<stack>/sql/<hook-point>/*.sql``, found on disk and prepared for psql (nothing runs here).

Files run in name order, each in its own psql session with ON_ERROR_STOP. A
directory holding a file named ``ATOMIC`` runs all its files in one psql session
with ``--single-transaction``: all of them take effect or none does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from kompose.hooks import points as hooks

SQL_DIR = "sql"
ATOMIC_MARKER = "ATOMIC"


@dataclass(frozen=True)
class SqlDir:
    point: str
    directory: Path
    files: tuple[Path, ...]
    atomic: bool


def find(stack_dir: Path) -> tuple[dict[str, SqlDir], list[str]]:
    """The SQL hook directories of a stack by point, and the problems found: a directory that
    is not named after a hook point, one without .sql files, files that are neither .sql nor
    the ATOMIC marker."""
    base = stack_dir / SQL_DIR
    found: dict[str, SqlDir] = {}
    problems: list[str] = []
    if not base.is_dir():
        return found, problems
    for directory in sorted(p for p in base.iterdir() if p.is_dir()):
        point = directory.name
        if not hooks.is_point(point):
            problems.append(f"{directory}: not a hook point (pre_<op>, post_<op> or on_error)")
            continue
        files = tuple(sorted((p for p in directory.iterdir() if p.is_file() and p.suffix == ".sql"),
                             key=lambda p: p.name))
        others = sorted(p.name for p in directory.iterdir() if p.suffix != ".sql" and p.name != ATOMIC_MARKER)
        if others:
            problems.append(f"{directory}: ignored (not .sql): {', '.join(others)}")
        if not files:
            problems.append(f"{directory}: no .sql files")
            continue
        found[point] = SqlDir(point, directory, files, (directory / ATOMIC_MARKER).exists())
    return found, problems


@dataclass(frozen=True)
class Script:
    """Several files joined into one psql input, with where each one starts."""

    text: str
    starts: tuple[tuple[int, str], ...]  # (first line number, file name)

    def locate(self, message: str) -> str:
        """psql's ``<stdin>:LINE`` references in ``message`` rewritten as ``file.sql:line``."""

        def where(match: re.Match) -> str:
            line = int(match.group(1))
            name, first = self.starts[0][1], 1
            for start, candidate in self.starts:
                if start <= line:
                    name, first = candidate, start
            return f"{name}:{line - first + 1}"

        return re.sub(r"<stdin>:(\d+)", where, message)


def script(files: tuple[Path, ...] | list[Path]) -> Script:
    """One psql input from ``files`` in order (each ends with a newline). Raises OSError when
    a file cannot be read."""
    parts, starts, line = [], [], 1
    for path in files:
        text = path.read_text(encoding="utf-8")
        if not text.endswith("\n"):
            text += "\n"
        starts.append((line, path.name))
        parts.append(text)
        line += text.count("\n")
    return Script("".join(parts), tuple(starts))
