"""db:drill: restore the newest dump into a throwaway database, smoke-test it, count its rows, drop it."""

from __future__ import annotations

from kompose.dumps import files as dumps
from kompose.actions.common import admin_for, database_container, find_hooks, new_stack_plan, sql
from kompose.actions.common import own_plans, stack_engine
from kompose.actions.db_import import RECOVER_WHAT, find_dump, restored_check
from kompose.host import swap_mark
from kompose.context import Context
from kompose.plan.steps import CheckChecksum, CheckDump, CountRows, Exec, Note, RecordDrill, Sql
from kompose.plan.model import StackPlan
from kompose.stacks import Stack

STATE_FILE = dumps.DRILL_STATE


def plan(ctx: Context, stack: Stack, dump: str | None = None, from_repository: bool = False) -> StackPlan:
    """Restore ``dump`` (default: the newest) into ``<DB_NAME>__kompose_drill`` in the database's
    own container; run the ``drill`` hooks against it (``hook_drill``, ``sql/drill/*.sql``, ...);
    count its rows; drop it, after a failure too. The live database is never touched."""
    stack_plan = new_stack_plan(ctx, stack, "db:drill", lock=True)
    engine, why = stack_engine(ctx, stack, stack_plan)
    if own := own_plans(engine):
        return own.drill_plan(ctx, stack, stack_plan, engine, why, dump, from_repository)
    conn = engine.connection(stack_plan.env, stack.name)
    engine.check_name(conn.database, engine.drill_suffix)
    pull, after = [], []
    if from_repository:  # the newest copy (or snapshot ``dump``), pulled into a scratch directory, removed after
        from kompose.actions.db_pull import scratch_pull

        path, fmt, compression, pull, scratch = scratch_pull(ctx, stack, stack_plan, conn.database, dump)
        after = [scratch]
    else:
        path = find_dump(stack_plan.directory, conn.database, dump)
        fmt, compression = dumps.detect(path)
    container = database_container(ctx, stack, stack_plan.env)
    conn = engine.via(conn, container)  # a database outside Docker: over the network
    drill = engine.drill_name(conn.database)
    stack_plan.env["KOMPOSE_DUMP_FILE"] = str(path)
    hooks = find_hooks(ctx, stack, stack_plan, conn, container)
    variables = engine.drill_variables(conn)
    via, hint = admin_for(engine, stack_plan, conn, container)

    def admin(script: str, what: str) -> Sql:
        return Sql(container, "postgres", script, variables, conn.exec_env(), what,
                   engine.script_argv(conn, "postgres", variables))

    drop = admin(engine.DROP_TEMP, f"drop the drill database {drill}")
    record = RecordDrill(stack_plan.directory / STATE_FILE, path)
    stack_plan.steps += [
        Note(f"database {conn.database} in container {container.name}: {container.reason}"),
        Note(f"drill: restore {path.name} into {drill}, smoke-test it, count its rows, drop it; "
             f"{conn.database} is not touched"),
        *pull,
        CheckChecksum(path),
        CheckDump(path, fmt, compression),
        # like every db command: reopen a live database a killed swap left closed (the drill does not need it)
        sql(engine, container, conn, engine.RECOVER, RECOVER_WHAT, optional=True, via=via, hint=hint,
            mark=swap_mark.mark_path(stack_plan.directory)),
        admin(engine.CREATE_TEMP, f"create the drill database {drill}"),
        Exec(container, engine.restore_argv(conn, drill, fmt), conn.exec_env(), stdin_file=path,
             what=f"restore {path.name} into {drill}", host_codec=compression,
             guard=engine.plain_guard and fmt == "plain"),
        # every table with the rows the dump holds and its manifest records
        *restored_check(engine, container, conn, drill, path, fmt, counts=True),
        # the smoke test: every hook of the drill point, aimed at the drill database
        *hooks.steps("drill", str(path), drill, env={"KOMPOSE_DB": drill, "KOMPOSE_DB_CONTAINER": container.name},
                     database=drill, dump_file=str(path)),
        CountRows(container, drill, engine.script_argv(conn, drill, ()), conn.exec_env(),
                  engine.ROW_COUNTS),
        drop,
        record,
        *after,
    ]
    stack_plan.on_failure += [drop, record, *after]
    return stack_plan
