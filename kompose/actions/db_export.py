"""db:export: pg_dump of the stack's database into <dump>.partial, checked, fsynced, renamed.

pg_dump runs either in the database container, streamed over the exec socket, or (the
direct transport) in a helper container that writes the file itself; see transport.py.
"""

from __future__ import annotations

from datetime import datetime

from kompose import containers, dumps, postgres, transport
from kompose.actions.common import find_hooks, new_stack_plan
from kompose.context import Context
from kompose.errors import UsageError
from kompose.plan import (
    HELPER_MOUNT, CheckDump, DumpInHelper, Exec, Note, Remove, RemoveHelpers, RemoveStale, Rename, StackPlan,
)
from kompose.stacks import Stack

FORMATS = tuple(dumps.EXTENSIONS)


def plan(ctx: Context, stack: Stack, fmt: str = "plain", transport_name: str = "auto") -> StackPlan:
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    stack_plan = new_stack_plan(ctx, stack, "db:export", lock=True)
    conn = postgres.connection(stack_plan.env, stack.name)
    container = containers.resolve(ctx, stack, stack_plan.env)
    final = dumps.dump_path(stack_plan.directory, conn.database, fmt, datetime.now())
    partial = final.with_name(final.name + dumps.PARTIAL_SUFFIX)
    stack_plan.env["KOMPOSE_DUMP_FILE"] = str(final)
    hooks = find_hooks(ctx, stack, stack_plan, conn, container)
    choice = transport.choose(transport_name, ctx.process_env, stack_plan.directory)
    what = f"pg_dump {conn.database} ({fmt}, {choice.name})"
    if choice.name == "direct":
        dump_step = DumpInHelper(
            container, postgres.pg_dump_argv(conn, fmt, output=f"{HELPER_MOUNT}/{partial.name}"), conn.exec_env(),
            stack_plan.directory, partial, transport.helper_user(choice.forced and _rootless(ctx)), what=what,
        )
    else:
        dump_step = Exec(container, postgres.pg_dump_argv(conn, fmt), conn.exec_env(), stdout_file=partial, what=what)

    stack_plan.steps += [
        Note(f"database {conn.database} in container {container.name}: {container.reason}"),
        Note(f"transport {choice.name}: {choice.reason}"),
        # safe under the stack's lock: no other export of this stack is running
        RemoveHelpers(stack_plan.directory, "left by an interrupted export"),
        RemoveStale(stack_plan.directory, dumps.stale_partial_glob(conn.database), "left by an interrupted export"),
        *hooks.steps("pre_db_export"),
        dump_step,
        CheckDump(partial, fmt),
        Rename(partial, final),
    ]
    stack_plan.post += hooks.steps("post_db_export", str(final), dump_file=str(final))
    stack_plan.on_failure.append(Remove((partial,), "an unfinished dump is never left behind"))
    return stack_plan


def _rootless(ctx: Context) -> bool:
    """Whether the engine runs rootless, asked once per run (read-only).

    Asked only when direct was forced: when auto chose it, the engine shares kompose's
    mount namespace, which a rootless engine never does.
    """
    cached = getattr(ctx, "_engine_rootless", None)
    if cached is None:
        cached = transport.engine_is_rootless(ctx.docker())
        ctx._engine_rootless = cached
    return cached
