"""db:push: copy a dump (default: the newest verified one) into the stack's restic repositories
that lack it; and the copy steps db:export ends with.

A repository that fails gets one line (the repository, masked, and restic's reason) and the
stack fails, but the other repositories still get their copy and the local dump stays.
"""

from __future__ import annotations

import re
from pathlib import Path

from kompose.actions.common import find_hooks, new_stack_plan
from kompose.context import Context
from kompose.dumps import files as dumps
from kompose.dumps import manifest
from kompose.engines import engine_for
from kompose.errors import ConfigError, DumpError, UsageError
from kompose.hooks.sources import HookFinder
from kompose.plan.model import StackPlan
from kompose.plan.steps import Note, Step
from kompose.repositories import restic
from kompose.stacks import Stack


def repositories(env) -> tuple[restic.Repository, ...]:
    """The stack's repositories; when there are some, restic must be installed and a password set
    (ConfigError before anything runs)."""
    found = restic.repositories_of(env)
    if found:
        restic.program()
    return found


def copy_steps(stack: Stack, hooks: HookFinder, dump: Path, database: str,
               found: tuple[restic.Repository, ...], skip_existing: bool = False, init: bool = False) -> list[Step]:
    """One PushCopy per repository (with its pre/post_db_push hooks), then CopiesDone; [] without repositories."""
    if not found:
        return []
    # the repositories' step kinds, imported only for a stack that has repositories
    from kompose.run.repository_steps import CopiesDone, PushCopy

    steps: list[Step] = []
    for repository in found:
        # hooks get the masked repository string: a hook's arguments are visible in ps
        pre = tuple(hooks.steps("pre_db_push", str(dump), repository.masked, dump_file=str(dump)))
        post = tuple(hooks.steps("post_db_push", str(dump), repository.masked, dump_file=str(dump)))
        steps.append(PushCopy(repository.url, dump, stack.name, database, skip_existing, init, pre, post))
    steps.append(CopiesDone(f"copy into the {len(found)} repositor{'y' if len(found) == 1 else 'ies'}"))
    return steps


def stream_steps(stack: Stack, stack_plan: StackPlan, database: str, container, argv, exec_env, final: Path,
                 hooks: HookFinder, found: tuple[restic.Repository, ...], what: str, fmt: str = "plain",
                 compression=None) -> list[Step]:
    """KOMPOSE_LOCAL_DUMPS=no: the dump tool's output (pg_dump, mariadb-dump, mysqldump) streamed into
    each repository (StreamDump), checked in flight, then CopiesDone; no file in the dump directory.
    Refused before anything runs without repositories, and for a dump that is not plain and uncompressed."""
    if not found:
        raise ConfigError(f"{restic.LOCAL_DUMPS}=no needs repositories ({restic.SETTING}): the dump has nowhere "
                          "else to go")
    if fmt != "plain" or compression:
        raise UsageError(f"{restic.LOCAL_DUMPS}=no streams plain, uncompressed dumps (restic compresses them, and "
                         "deduplicates them only uncompressed); --format custom and --compress need a local dump")
    from kompose.run.repository_steps import CopiesDone, RepositoryHooks, StreamDump

    hook_pairs = tuple(
        RepositoryHooks(r.url, tuple(hooks.steps("pre_db_push", final.name, r.masked, dump_file=final.name)),
                        tuple(hooks.steps("post_db_push", final.name, r.masked, dump_file=final.name)))
        for r in found)
    return [
        StreamDump(container, tuple(argv), exec_env, tuple(r.url for r in found), stack_plan.dump_dir, final.name,
                   stack.name, database, what, hook_pairs),
        CopiesDone(f"copy into the {len(found)} repositor{'y' if len(found) == 1 else 'ies'}"),
    ]


def newest_verified(directory: Path, database: str) -> Path:
    """The newest dump whose manifest says it was verified. Raises DumpError when there is none."""
    existing = dumps.list_dumps(directory, database)
    for dump in existing:
        if manifest.health(dump).state == "verified":
            return dump.path
    if existing:
        raise DumpError(f"no verified dump of {database} in {directory} (name one: db:push DUMP)")
    raise DumpError(f"no dump of {database} in {directory}; run db:export first")


def plan(ctx: Context, stack: Stack, dump: str | None = None, init: bool = False) -> StackPlan:
    from kompose.actions.db_import import find_dump

    stack_plan = new_stack_plan(ctx, stack, "db:push", lock=True)
    env = stack_plan.env
    conn = engine_for(env).connection(env, stack.name)
    found = repositories(env)
    if not found:
        stack_plan.steps.append(Note(f"no repositories ({restic.SETTING} is not set, or off): nothing to push"))
        return stack_plan
    path = find_dump(stack_plan.dump_dir, conn.database, dump) if dump else \
        newest_verified(stack_plan.dump_dir, conn.database)
    env["KOMPOSE_DUMP_FILE"] = str(path)
    hooks = find_hooks(ctx, stack, stack_plan, conn)
    # the sha256 against the manifest is checked while restic reads the dump (see PushCopy)
    stack_plan.steps += copy_steps(stack, hooks, path, conn.database, found, skip_existing=True, init=init)
    return stack_plan


SUBSET_KEY = "KOMPOSE_REPOSITORY_CHECK_SUBSET"
_SUBSET = re.compile(r"(\d+(\.\d+)?%|\d+/\d+|\d+[KMGT]?)")


def verify_remote_steps(stack: Stack, env, subset: str | None) -> list[Step]:
    """db:verify --remote: restic check of each repository, reading ``subset`` of the data back
    (default: the stack's KOMPOSE_REPOSITORY_CHECK_SUBSET, else 5%; "0": the structure only)."""
    from kompose.run.repository_steps import CheckRepository, CopiesDone

    found = repositories(env)
    if not found:
        raise ConfigError(f"{stack.name}: no repositories to verify ({restic.SETTING} is not set, or off)")
    value = (subset if subset is not None else env.get(SUBSET_KEY, "").strip() or "5%").strip()
    if value == "0":
        value = ""
    elif not _SUBSET.fullmatch(value):
        raise UsageError(f"--read-data {value!r}: a percentage (5%), a part (1/10) or a size (500M)")
    return [CheckRepository(r.url, value) for r in found] + [CopiesDone("repository check")]
