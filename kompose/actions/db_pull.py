"""db:pull: bring the stack's newest copy (or a named snapshot) back from its restic repositories
into the stack's directory, checked against its manifest's sha256 before it gets its final name.

Needs no Docker and no local dump: after a lost host, the stacks' files and the repository
password are enough for ``db:pull`` then ``db:import``.
"""

from __future__ import annotations

from kompose.actions.common import new_stack_plan
from kompose.actions.db_push import repositories
from kompose.context import Context
from kompose.engines import engine_for
from kompose.errors import ConfigError
from kompose.plan.model import StackPlan
from kompose.run.repository_steps import PullCopy
from kompose.repositories import restic
from kompose.stacks import Stack


def plan(ctx: Context, stack: Stack, snapshot: str | None = None) -> StackPlan:
    stack_plan = new_stack_plan(ctx, stack, "db:pull", lock=True)
    conn = engine_for(stack_plan.env).connection(stack_plan.env, stack.name)
    found = repositories(stack_plan.env)
    if not found:
        raise ConfigError(f"{stack.name}: no repositories to pull from ({restic.SETTING} is not set, or off)")
    stack_plan.steps.append(PullCopy(tuple(r.url for r in found), stack_plan.directory, stack.name, conn.database,
                                     snapshot))
    return stack_plan
