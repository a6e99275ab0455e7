"""sql hooks: ``<stack>/sql/<hook-point>/*.sql``, found on disk, run by the stack's engine's client
(psql; mariadb / mysql) in the database container.

Files run in name order, each in its own client session, stopping at the first error. A
directory holding a file named ``ATOMIC`` runs all its files in one session in one transaction:
all of them take effect or none does (PostgreSQL: ``--single-transaction``; MariaDB and MySQL:
START TRANSACTION … COMMIT, which DDL commits implicitly). What the engine does differently
(argv, how values reach the SQL, how it names a line) is asked of it (engines/base.Engine.hook_*).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from kompose.env import is_secret
from kompose.errors import HookError
from kompose.hooks import points as hooks
from kompose.plan.steps import Container, HookStep


KIND = "sql"
_PSQL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

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

    def locate(self, message: str, pattern: str = r"()<stdin>:(\d+)", offset: int = 0) -> str:
        """The client's references to a line of its input in ``message`` (``pattern``: psql's
        ``<stdin>:LINE``, the mariadb client's ``at line LINE``) rewritten as ``file.sql:line``;
        ``offset``: lines the engine put before the files."""

        def where(match: re.Match) -> str:
            line = int(match.group(2)) - offset
            if line < 1:
                return match.group(0)
            name, first = self.starts[0][1], 1
            for start, candidate in self.starts:
                if start <= line:
                    name, first = candidate, start
            return f"{match.group(1)}{name}:{line - first + 1}"

        return re.sub(pattern, where, message)


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


@dataclass(frozen=True)
class SqlHook(HookStep):
    """The .sql files of ``<stack>/sql/<point>/`` run through psql in the database container, in
    name order, ON_ERROR_STOP; ``atomic``: all in one transaction. Values reach the SQL as psql
    variables (``--set``), never pasted. ``container`` None: found when the hook runs."""

    kind = KIND
    point: str
    container: Container | None
    database: str
    files: tuple[Path, ...]
    atomic: bool
    variables: tuple[tuple[str, str], ...]
    env: tuple[tuple[str, str], ...]
    argv: tuple[str, ...]
    timeout: float
    engine: str = "postgres"  # engines.ENGINES: whose client runs the files

    def what(self) -> str:
        where = self.container.name if self.container else "the database container"
        names = ", ".join(p.name for p in self.files)
        client = "psql -d" if self.engine == "postgres" else f"{self.argv[0] if self.argv else self.engine} --database"
        text = f"sql {names} -> {client} {self.database} in {where}"
        return text + (" (atomic: one transaction)" if self.atomic else " (each file on its own)")

    def label(self) -> str:
        return f"sql/{self.point}/"


STEP = SqlHook


def run(runner, step: SqlHook, state: Mapping[str, str]) -> None:
    from kompose.docker import containers
    from kompose.engines import engine_named

    engine = engine_named(step.engine)
    scope = runner.scope
    container = step.container or containers.resolve(runner.ctx, runner.stack(), scope.env)
    variables = [(k, v) for k, v in scope.context().items() if _PSQL_NAME.match(k) and not is_secret(k)]
    variables += [("run_id", scope.run_id), ("status", state.get("KOMPOSE_STATUS", "running"))]
    batches = [step.files] if step.atomic else [(path,) for path in step.files]
    count = f"{len(step.files)} file{'s' if len(step.files) != 1 else ''}"
    how = "in one transaction" if step.atomic else "each on its own"
    runner.detail(f"hook sql/{step.point}/ ({count}, {how}) in {step.database} ({container.name})")
    started = time.monotonic()
    for batch in batches:
        try:
            joined = script(batch)
        except OSError as exc:
            raise HookError(f"sql hook {batch[0]}: cannot read: {exc.strerror or exc}") from None
        what = f"sql hook sql/{step.point}/" + (batch[0].name if len(batch) == 1 else "")
        deadline_left = step.timeout - (time.monotonic() - started)
        if deadline_left <= 0:
            raise HookError(f"{what} timed out after {step.timeout:g} s")
        argv, stdin, offset = engine.hook_input(step.argv, joined.text, step.variables, tuple(variables), step.atomic)
        result = runner.container_exec(container.id, container.name, argv, dict(step.env),
                                       stdin, deadline_left, what, step.timeout)
        runner.print_output(result.stdout)
        if result.exit_code != 0:
            message = engine.failure_message(what, result.exit_code, result.stderr)
            if step.atomic:
                message += f" ({engine.hook_rolled_back})"
            raise HookError(joined.locate(message, engine.hook_line, offset))
