"""db:rollback: swap the previous database back in; the current one becomes the previous."""

from __future__ import annotations

from kompose.docker import containers
from kompose.engines.postgres import sql as postgres
from kompose.actions import mariadb_plans
from kompose.engines import choice as engine_choice
from kompose.actions.common import find_hooks, new_stack_plan
from kompose.actions.db_import import RECOVER_WHAT, sql
from kompose.context import Context
from kompose.plan.steps import Note
from kompose.plan.model import StackPlan
from kompose.stacks import Stack


def plan(ctx: Context, stack: Stack) -> StackPlan:
    stack_plan = new_stack_plan(ctx, stack, "db:rollback", lock=True)
    engine, container, why = mariadb_plans.engine_of(ctx, stack, stack_plan.env)
    if engine_choice.is_mariadb(engine):
        return mariadb_plans.rollback_plan(ctx, stack, stack_plan, engine, container, why)
    conn = postgres.connection(stack_plan.env, stack.name)
    container = containers.resolve(ctx, stack, stack_plan.env)
    hooks = find_hooks(ctx, stack, stack_plan, conn, container)
    prev = postgres.prev_name(conn.database)
    stack_plan.steps += [
        Note(f"database {conn.database} in container {container.name}: {container.reason}"),
        sql(container, conn, postgres.RECOVER, RECOVER_WHAT),
        *hooks.steps("pre_db_rollback"),
        sql(container, conn, postgres.ROLLBACK, f"swap {prev} <-> {conn.database}"),
    ]
    stack_plan.post += hooks.steps("post_db_rollback")
    return stack_plan
