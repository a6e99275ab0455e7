"""db:verify: re-check dumps — the checksum against the manifest and the structure (read-only)."""

from __future__ import annotations

from kompose.dumps import files as dumps
from kompose.engines import engine_for
from kompose.actions.common import database_container, find_hooks, new_stack_plan
from kompose.actions.db_import import find_dump
from kompose.context import Context
from kompose.errors import DumpError
from kompose.plan.steps import Note, VerifyDump, VerifyDumps
from kompose.plan.model import StackPlan
from kompose.stacks import Stack


def plan(ctx: Context, stack: Stack, dump: str | None = None, all_dumps: bool = False, remote: bool = False,
         read_data: str | None = None) -> StackPlan:
    """Verify ``dump``, else the newest dump, or every dump with ``all_dumps``.

    Custom archives are read in full by pg_restore inside the database container (which
    must run); plain dumps are checked on the host. Raises DumpError when there is none.
    """
    stack_plan = new_stack_plan(ctx, stack, "db:verify")
    if remote:  # the stack's restic repositories instead of its local dumps
        from kompose.actions.db_push import verify_remote_steps

        stack_plan.steps += verify_remote_steps(stack, stack_plan.env, read_data)
        return stack_plan
    engine = engine_for(stack_plan.env)
    conn = engine.connection(stack_plan.env, stack.name)
    if dump:
        path = find_dump(stack_plan.dump_dir, conn.database, dump)
        fmt, compression = dumps.detect(path)
        targets = [(path, fmt, compression)]
    else:
        found = dumps.list_dumps(stack_plan.dump_dir, conn.database)
        if not found:
            raise DumpError(f"no dump of {conn.database} in {stack_plan.dump_dir}; run db:export first")
        targets = [(d.path, d.format, d.compression) for d in (found if all_dumps else found[:1])]
    container = None
    if any(fmt == "custom" for _, fmt, _ in targets):
        container = database_container(ctx, stack, stack_plan.env)
        stack_plan.steps.append(Note(f"custom dumps are read by pg_restore in {container.name}: {container.reason}"))
    hooks = find_hooks(ctx, stack, stack_plan, conn, container)
    stack_plan.steps += [
        *hooks.steps("pre_db_verify"),
        VerifyDumps(tuple(VerifyDump(path, fmt, compression, container, checksum=True, thorough=True)
                          for path, fmt, compression in targets)),
    ]
    stack_plan.post += hooks.steps("post_db_verify")
    return stack_plan
