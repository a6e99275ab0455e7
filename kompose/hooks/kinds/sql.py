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
        odd = sorted(p.name for p in directory.iterdir() if p.suffix == ".sql" and not p.is_file())
        if odd:  # a FIFO or a directory would hang or fail the run: never opened
            problems.append(f"{directory}: not regular files: {', '.join(odd)}")
        for path in files:
            problem = _text_problem(path)
            if problem:
                problems.append(f"{path}: {problem}")
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
        text = _read_text(path)
        if not text.endswith("\n"):
            text += "\n"
        starts.append((line, path.name))
        parts.append(text)
        line += text.count("\n")
    return Script("".join(parts), tuple(starts))


def _read_text(path: Path) -> str:
    """A SQL file's text. Raises OSError for one that cannot be read or is not UTF-8 (psql
    would take the bytes for whatever its client encoding is)."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise OSError(f"not UTF-8 text (line {line}); save it as UTF-8") from None


def _text_problem(path: Path) -> str | None:
    try:
        _read_text(path)
    except OSError as exc:
        return exc.strerror or str(exc)
    return None
