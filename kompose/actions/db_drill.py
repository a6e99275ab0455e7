"""db:drill: restore the newest dump into a throwaway database, smoke-test it, count its rows, drop it."""

from __future__ import annotations

from pathlib import Path

from kompose import containers, dumps, postgres
from kompose.actions.common import HookFinder, new_stack_plan
from kompose.actions.db_import import find_dump
from kompose.context import Context
from kompose.plan import CheckChecksum, CheckDump, CountRows, Exec, Note, RecordDrill, Sql, StackPlan
from kompose.stacks import Stack

STATE_FILE = ".kompose-drill.json"  # the last drill's result, for kompose status
SQL_DIR = Path("sql") / "drill"


def plan(ctx: Context, stack: Stack, dump: str | None = None) -> StackPlan:
    """Restore ``dump`` (default: the newest) into ``<DB_NAME>__kompose_drill`` in the database's
    own container; run ``hook_drill`` and ``sql/drill/*.sql`` against it; drop it, after a
    failure too. The live database is never touched."""
    stack_plan = new_stack_plan(ctx, stack, "db:drill", lock=True)
    conn = postgres.connection(stack_plan.env, stack.name)
    postgres.check_name(conn.database, postgres.DRILL_SUFFIX)
    path = find_dump(stack_plan.directory, conn.database, dump)
    fmt, compression = dumps.detect(path)
    container = containers.resolve(ctx, stack, stack_plan.env)
    hooks = HookFinder(stack_plan.hooks_file)
    drill = postgres.drill_name(conn.database)
    stack_plan.env["KOMPOSE_DUMP_FILE"] = str(path)
    variables = postgres.drill_variables(conn)

    def admin(script: str, what: str) -> Sql:
        return Sql(container, "postgres", script, variables, conn.exec_env(), what,
                   postgres.psql_script_argv(conn, "postgres", variables))

    drop = admin(postgres.DROP_TEMP, f"drop the drill database {drill}")
    record = RecordDrill(stack_plan.directory / STATE_FILE, path)
    sql_variables = (("stack", stack.name), ("dump_file", str(path)), ("db", drill))
    sql_files = sorted((stack_plan.directory / SQL_DIR).glob("*.sql"))
    stack_plan.steps += [
        Note(f"database {conn.database} in container {container.name}: {container.reason}"),
        Note(f"drill: restore {path.name} into {drill}, smoke-test it, count its rows, drop it; "
             f"{conn.database} is not touched"),
        CheckChecksum(path),
        CheckDump(path, fmt, compression),
        admin(postgres.CREATE_TEMP, f"create the drill database {drill}"),
        Exec(container, postgres.restore_argv(conn, drill, fmt), conn.exec_env(), stdin_file=path,
             what=f"restore {path.name} into {drill}", host_codec=compression),
        *hooks.step("drill", str(path), drill, env={"KOMPOSE_DB": drill}),
        *[
            Sql(container, drill, sql_file.read_text(encoding="utf-8"), sql_variables, conn.exec_env(),
                f"smoke test {SQL_DIR / sql_file.name}", postgres.psql_script_argv(conn, drill, sql_variables))
            for sql_file in sql_files
        ],
        CountRows(container, drill, postgres.psql_script_argv(conn, drill, ()), conn.exec_env(),
                  postgres.ROW_COUNTS),
        drop,
        record,
    ]
    stack_plan.on_failure += [drop, record]
    return stack_plan
