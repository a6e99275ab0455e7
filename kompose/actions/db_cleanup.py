"""db:cleanup: remove all but the newest N dumps of a stack's database."""

from __future__ import annotations

from kompose import dumps, postgres
from kompose.actions.common import find_hooks, new_stack_plan
from kompose.context import Context
from kompose.errors import UsageError
from kompose.plan import Note, Remove, StackPlan
from kompose.stacks import Stack


def plan(ctx: Context, stack: Stack, keep: int = 1) -> StackPlan:
    if keep < 1:
        raise UsageError("--keep must be at least 1: cleanup never removes the newest dump")
    stack_plan = new_stack_plan(ctx, stack, "db:cleanup", lock=True)
    conn = postgres.connection(stack_plan.env, stack.name)
    hooks = find_hooks(ctx, stack, stack_plan, conn)
    existing = dumps.list_dumps(stack_plan.directory, conn.database)
    doomed = dumps.to_remove(existing, keep)
    stack_plan.steps += hooks.steps("pre_db_cleanup")
    if doomed:
        stack_plan.steps.append(Remove(tuple(d.path for d in doomed), f"keeping the newest {keep} of {len(existing)}"))
    else:
        stack_plan.steps.append(Note(f"nothing to remove: {len(existing)} dump(s), keeping {keep}"))
    stack_plan.post += hooks.steps("post_db_cleanup")
    return stack_plan
