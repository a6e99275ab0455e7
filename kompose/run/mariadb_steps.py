"""The step kinds of MariaDB and MySQL stacks that PostgreSQL's do not cover: the rows of a restored
database against the dump's (db:drill). Each a frozen dataclass, its renderer and its handler;
STEPS maps them (one line in run/handlers.STEP_MODULES)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from kompose.docker import exec as docker_exec
from kompose.dumps import manifest, mariadb_rows
from kompose.errors import DumpError, KomposeError
from kompose.plan.render import describe
from kompose.plan.steps import Container
from kompose.run.restore_checks import compare_rows


@dataclass(frozen=True)
class CheckRestoredRows:
    """After a restore into ``database``: every table the dump holds data for is there with as many
    rows as the dump's INSERT statements hold (and its manifest records); the counts go into the
    stack's result (``row_counts``, which RecordDrill keeps). ``argv``: the client reading
    ``script`` on stdin, or a script of its own (one ``table<TAB>count`` row per base table)."""

    container: Container
    database: str
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    dump: Path
    compression: str
    script: str = ""  # the client's stdin, when argv reads it


@describe.register
def _check_restored_rows(step: CheckRestoredRows) -> tuple[str, str]:
    return "check", (f"{step.container.name}: {step.database} holds every table of {step.dump.name}, each with the "
                     "rows its INSERT statements hold (and its manifest records); count them")


def expected_rows(dump: Path, compression: str) -> dict[str, int]:
    """The rows of each table in ``dump``, counted from the file; raises DumpError when its manifest
    records other counts (the file is not the dump that was written)."""
    rows = mariadb_rows.scan_file(dump, compression)
    try:
        found = manifest.read(dump)
    except DumpError:
        found = None
    if found is not None and found.rows is not None:
        problem = compare_rows(found.rows, rows, "its manifest records", "the dump holds")
        if problem:
            raise DumpError(f"{dump.name}: {problem}")
    return rows


def run_check_restored_rows(run, step: CheckRestoredRows) -> None:
    want = expected_rows(step.dump, step.compression)
    result = docker_exec.container_exec(run.ctx.docker(), step.container.id, step.argv, dict(step.env),
                                        stdin=io.BytesIO(step.script.encode()))
    if result.exit_code != 0:
        raise KomposeError(run.engine.failure_message(f"{step.argv[0]} (row counts)", result.exit_code,
                                                      result.stderr))
    counts: dict[str, int] = {}
    for line in result.stdout.decode("utf-8", "replace").splitlines():
        table, _, count = line.rpartition("\t")
        if table and count.strip().isdigit():
            counts[table] = int(count)
    run.outcome.details["row_counts"] = counts
    width = max([len(t) for t in counts] + [5])
    run.console.detail(f"{len(counts)} table(s), {sum(counts.values())} row(s):", "blue")
    for table, count in counts.items():
        run.console.stream_line("", f"{table:<{width}}  {count:>12}")
    missing = sorted(set(want) - set(counts))
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise DumpError(f"{step.database} lacks {len(missing)} table(s) {step.dump.name} holds data for ({shown}): "
                        "the restore did not land there")
    problem = compare_rows(want, {table: counts[table] for table in want}, "the dump holds", step.database + " has")
    if problem:
        raise DumpError(f"{step.database}: {problem}")
    run.console.detail(f"{step.database} holds the rows of all {len(want)} table(s) of {step.dump.name}", "dim")


STEPS = {CheckRestoredRows: run_check_restored_rows}
