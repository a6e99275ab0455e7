"""An export's checks before pg_dump, in as few execs as the database's state allows.

One step kind of its own (ExportCheck: dataclass, renderer, handler, STEPS). The check that the
dump can be complete (Engine.EXPORT_CHECK, as DB_USER in the live database) also asks, in the
same psql session, whether an interrupted import left anything for RECOVER to repair
(Engine.EXPORT_LEFTOVERS). RECOVER (the admin connection, optional) then runs only when that
answer is yes, when the swap mark says a swap was interrupted (the live database may refuse
connections: RECOVER first), or when the check cannot connect (it runs, then the check once
more). An export of a healthy stack costs one exec and one psql session before pg_dump.

With ``dump`` (the exec transport, no pre_db_export hook between them), the check and pg_dump run
side by side in one exec (run/handlers.CHECKED_EXEC): pg_dump's output counts only when the check
passed and printed nothing; else it is thrown away, the check runs again on its own, as above (its
error, RECOVER), then pg_dump in an exec of its own. The swap mark's RECOVER comes first either way.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass

from kompose.docker import exec as docker_exec
from kompose.errors import DatabaseError, DockerError
from kompose.plan.render import describe
from kompose.plan.steps import Exec, Sql


@dataclass(frozen=True)
class ExportCheck:
    """``check`` (its script ends with the engine's leftovers query, printing ``leftovers_line``
    when there is something to repair); ``recover`` runs when needed (see the module); ``dump``,
    when set, runs in the check's exec once the check passed (see the module)."""

    check: Sql
    recover: Sql
    leftovers_line: str
    dump: Exec | None = None

    # the check's container, psql and environment, as a plain Sql step's (run/tools.wrap looks for them)
    @property
    def container(self):
        return self.check.container

    @property
    def argv(self) -> tuple[str, ...]:
        return self.check.argv

    @property
    def env(self) -> tuple[tuple[str, str], ...]:
        return self.check.env


@describe.register
def _describe(step: ExportCheck) -> tuple[str, str]:
    _, check = describe(step.check)
    _, recover = describe(step.recover)
    when = (f"only when the check finds leftovers of an interrupted import, when {step.recover.mark.name} "
            "says a swap was interrupted (then first), or when the check cannot connect (then first, "
            "and the check again)") if step.recover.mark else "only when the check finds leftovers"
    if step.dump is None:
        return "sql", f"{check}\n  then, {when}:\n  {recover}"
    _, dump = describe(step.dump)
    first, _, rest = check.partition("\n")
    return "sql", (f"{first}, beside {step.dump.what or 'the dump'} in the same exec{_lines(rest)}\n"
                   f"  the dump, kept when the check passed and found nothing to recover (else thrown away, and "
                   f"made again in an exec of its own after the check alone and RECOVER when needed):\n  {dump}\n"
                   f"  RECOVER, {when}:\n  {recover}")


def _lines(text: str) -> str:
    return f"\n{text}" if text else ""


def _check(run, step: Sql):
    run.console.detail(step.what, "blue")
    started = time.time()
    try:
        result = docker_exec.container_exec(run.ctx.docker(), step.container.id, step.argv, dict(step.env),
                                            stdin=io.BytesIO(step.script.encode()))
    except DockerError:
        run.check_container(step.container, started, step.what)
        raise
    return result, started


def _run(run, step: ExportCheck) -> None:
    from kompose.run.handlers import run_exec, run_sql

    recovered = False
    if step.recover.mark is not None and step.recover.mark.exists():
        run_sql(run, step.recover)  # a killed swap may have left the live database closed
        recovered = True
    elif step.dump is not None:
        run.console.detail(step.check.what, "blue")
        if run_exec(run, step.dump, check=step.check):
            return  # the check passed, and pg_dump ran in its exec
    _check_alone(run, step, recovered)
    if step.dump is not None:
        run_exec(run, step.dump)


def _check_alone(run, step: ExportCheck, recovered: bool) -> None:
    from kompose.run.handlers import run_sql

    result, started = _check(run, step.check)
    if result.exit_code == 2 and not recovered:
        # psql could not connect: a database a swap left closed (its mark lost) is reopened by RECOVER
        run_sql(run, step.recover)
        recovered = True
        result, started = _check(run, step.check)
    if result.exit_code != 0:
        run.check_container(step.check.container, started, step.check.what, result)
        message = run.engine.failure_message(f"psql ({step.check.what})", result.exit_code, result.stderr,
                                             own_script=True)
        if step.check.hint and result.exit_code == 2:
            message += f"; {step.check.hint}"
        raise DatabaseError(message)
    lines = [line for line in result.stdout.decode("utf-8", "replace").splitlines() if line.strip()]
    for line in lines:
        if line.strip() != step.leftovers_line:
            run.console.stream_line("", line)
    if step.leftovers_line in (line.strip() for line in lines) and not recovered:
        run_sql(run, step.recover)


STEPS = {ExportCheck: _run}
