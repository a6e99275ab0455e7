"""db:export: pg_dump inside the database container, streamed to <dump>.partial, checked, renamed."""

from __future__ import annotations

from datetime import datetime

from kompose import containers, dumps, postgres
from kompose.actions.common import find_hooks, new_stack_plan
from kompose.actions.db_import import RECOVER_WHAT, sql
from kompose.context import Context
from kompose.errors import UsageError
from kompose.plan import CheckDump, Exec, Note, Remove, RemoveStale, Rename, StackPlan
from kompose.stacks import Stack

FORMATS = tuple(dumps.EXTENSIONS)


def plan(ctx: Context, stack: Stack, fmt: str = "plain") -> StackPlan:
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    stack_plan = new_stack_plan(ctx, stack, "db:export", lock=True)
    conn = postgres.connection(stack_plan.env, stack.name)
    container = containers.resolve(ctx, stack, stack_plan.env)
    final = dumps.dump_path(stack_plan.directory, conn.database, fmt, datetime.now())
    partial = final.with_name(final.name + dumps.PARTIAL_SUFFIX)
    stack_plan.env["KOMPOSE_DUMP_FILE"] = str(final)
    hooks = find_hooks(ctx, stack, stack_plan, conn, container)

    stack_plan.steps += [
        Note(f"database {conn.database} in container {container.name}: {container.reason}"),
        # safe under the stack's lock: no other export of this stack is running
        RemoveStale(stack_plan.directory, dumps.stale_partial_glob(conn.database), "left by an interrupted export"),
        # and no import: the next run after a crash, whatever it is, cleans up (a live database
        # a killed swap left closed could not even be dumped); the dump does not depend on it
        sql(container, conn, postgres.RECOVER, RECOVER_WHAT, optional=True),
        *hooks.steps("pre_db_export"),
        Exec(container, postgres.pg_dump_argv(conn, fmt), conn.exec_env(), stdout_file=partial,
             what=f"pg_dump {conn.database} ({fmt})"),
        CheckDump(partial, fmt),
        Rename(partial, final),
    ]
    stack_plan.post += hooks.steps("post_db_export", str(final), dump_file=str(final))
    stack_plan.on_failure.append(Remove((partial,), "an unfinished dump is never left behind"))
    return stack_plan
