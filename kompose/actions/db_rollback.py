"""db:rollback: swap the previous database back in; the current one becomes the previous."""

from __future__ import annotations

from kompose.actions.common import database_container, find_hooks, new_stack_plan
from kompose.actions.common import own_plans, stack_engine
from kompose.actions.common import admin_for, checked_and_recovered, sql
from kompose.host import swap_mark
from kompose.context import Context
from kompose.plan.steps import Note
from kompose.plan.model import StackPlan
from kompose.stacks import Stack


def plan(ctx: Context, stack: Stack) -> StackPlan:
    stack_plan = new_stack_plan(ctx, stack, "db:rollback", lock=True)
    engine, why = stack_engine(ctx, stack, stack_plan)
    if own := own_plans(engine):
        return own.rollback_plan(ctx, stack, stack_plan, engine, why)
    conn = engine.connection(stack_plan.env, stack.name)
    container = database_container(ctx, stack, stack_plan.env)
    conn = engine.via(conn, container)  # a database outside Docker: over the network
    hooks = find_hooks(ctx, stack, stack_plan, conn, container)
    prev = engine.prev_name(conn.database)
    via, hint = admin_for(engine, stack_plan, conn, container)
    mark = swap_mark.mark_path(stack_plan.directory)
    stack_plan.steps += [
        Note(f"database {conn.database} in container {container.name}: {container.reason}"),
        checked_and_recovered(engine, container, conn, via, hint, "db:rollback", mark),
        *hooks.steps("pre_db_rollback"),
        sql(engine, container, conn, engine.ROLLBACK, f"swap {prev} <-> {conn.database}", via=via, hint=hint,
            mark=mark, closes=True),
    ]
    # a rollback that fails (or is interrupted) leaves the live database accepting connections
    stack_plan.on_failure.append(
        sql(engine, container, conn, engine.REOPEN, f"reopen {conn.database} if the rollback left it closed",
            via=via, hint=hint, mark=mark)
    )
    stack_plan.post += hooks.steps("post_db_rollback")
    return stack_plan
