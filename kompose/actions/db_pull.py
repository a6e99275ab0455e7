"""db:pull: bring the stack's newest copy (or a named snapshot) back from its restic repositories
into the stack's directory, checked against its manifest's sha256 before it gets its final name.

Needs no Docker and no local dump: after a lost host, the stacks' files and the repository
password are enough for ``db:pull`` then ``db:import``.
"""

from __future__ import annotations

from pathlib import Path

from kompose.actions.common import new_stack_plan
from kompose.actions.db_push import repositories
from kompose.context import Context
from kompose.engines import engine_for
from kompose.errors import ConfigError
from kompose.plan.model import StackPlan
from kompose.dumps import files as dumps
from kompose.repositories.client import newest_copy
from kompose.run.repository_steps import PullCopy, RemoveScratch
from kompose.repositories import restic
from kompose.stacks import Stack


def plan(ctx: Context, stack: Stack, snapshot: str | None = None) -> StackPlan:
    stack_plan = new_stack_plan(ctx, stack, "db:pull", lock=True)
    conn = engine_for(stack_plan.env).connection(stack_plan.env, stack.name)
    found = repositories(stack_plan.env)
    if not found:
        raise ConfigError(f"{stack.name}: no repositories to pull from ({restic.SETTING} is not set, or off)")
    stack_plan.steps.append(PullCopy(tuple(r.url for r in found), stack_plan.dump_dir, stack.name, conn.database,
                                     snapshot))
    return stack_plan


SCRATCH = ".kompose-drill-pull"


def scratch_pull(ctx: Context, stack: Stack, stack_plan: StackPlan, database: str, snapshot: str | None):
    """For db:drill --from-repository: (dump path, format, compression, [PullCopy], RemoveScratch).

    Which copy is decided now (a read-only listing), so the plan names the dump it drills.
    """
    found = repositories(stack_plan.env)
    if not found:
        raise ConfigError(f"{stack.name}: no repositories to drill from ({restic.SETTING} is not set, or off)")
    copy, url = newest_copy(stack_plan.env, stack_plan.directory, [r.url for r in found], stack.name, database,
                            snapshot, warn=ctx.console.warn)
    parsed = dumps.parse(Path(copy.dump_name))
    if parsed is None:
        raise ConfigError(f"snapshot {copy.short_id} holds {copy.dump_name}, which is not a dump kompose knows")
    scratch = stack_plan.dump_dir / SCRATCH
    path = scratch / copy.dump_name
    return (path, parsed.format, parsed.compression,
            [PullCopy((url,), scratch, stack.name, database, copy.id)], RemoveScratch(scratch))
