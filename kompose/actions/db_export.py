"""db:export: pg_dump inside the database container, streamed to <dump>.partial, verified,
described by a manifest, renamed."""

from __future__ import annotations

from datetime import datetime

from kompose import codecs, containers, dumps, postgres
from kompose.actions.common import find_hooks, new_stack_plan
from kompose.context import Context
from kompose.errors import UsageError
from kompose.plan import Exec, Note, Remove, RemoveStale, Rename, StackPlan, VerifyDump, WriteManifest
from kompose.stacks import Stack

FORMATS = tuple(dumps.EXTENSIONS)


def plan(ctx: Context, stack: Stack, fmt: str | None = None, compress: str | None = None) -> StackPlan:
    """``fmt``/``compress`` None: the stack's KOMPOSE_EXPORT_FORMAT / KOMPOSE_EXPORT_COMPRESS, else plain, none."""
    stack_plan = new_stack_plan(ctx, stack, "db:export", lock=True)
    env = stack_plan.env
    fmt = fmt or env.get("KOMPOSE_EXPORT_FORMAT", "").strip() or "plain"
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    compression = codecs.parse(compress if compress is not None else env.get("KOMPOSE_EXPORT_COMPRESS", ""))
    if compression and fmt == "custom":
        raise UsageError("--compress is for plain dumps: the custom format is compressed by pg_dump already")
    if compression and compression.codec == "zstd":
        codecs.zstd_program()  # missing zstd: say so before anything runs
    codec = compression.codec if compression else ""
    conn = postgres.connection(env, stack.name)
    container = containers.resolve(ctx, stack, env)
    final = dumps.dump_path(stack_plan.directory, conn.database, fmt, datetime.now(), codec)
    partial = final.with_name(final.name + dumps.PARTIAL_SUFFIX)
    env["KOMPOSE_DUMP_FILE"] = str(final)
    hooks = find_hooks(ctx, stack, stack_plan, conn, container)

    # gzip: pg_dump compresses inside the container, so fewer bytes cross the exec stream;
    # zstd: PostgreSQL 15's pg_dump has none, the host compresses (docs/operations.md)
    gzip_level = compression.level if codec == "gzip" else 0
    pg_dump = Exec(container, postgres.pg_dump_argv(conn, fmt, gzip_level), conn.exec_env(), stdout_file=partial,
                   what=f"pg_dump {conn.database} ({fmt}{', ' + str(compression) if compression else ''})",
                   host_codec="zstd" if codec == "zstd" else "", host_level=compression.level if codec == "zstd" else 0)
    stack_plan.steps += [
        Note(f"database {conn.database} in container {container.name}: {container.reason}"),
        # safe under the stack's lock: no other export of this stack is running
        RemoveStale(stack_plan.directory, dumps.stale_partial_glob(conn.database), "left by an interrupted export"),
        *hooks.steps("pre_db_export"),
        pg_dump,
        VerifyDump(partial, fmt, codec, container),
        # the manifest first: a dump under its final name always has one
        WriteManifest(final, stack.name, conn.database, fmt, codec, container, source=partial),
        Rename(partial, final),
    ]
    stack_plan.post += hooks.steps("post_db_export", str(final), dump_file=str(final))
    stack_plan.on_failure.append(Remove((partial,), "an unfinished dump is never left behind"))
    return stack_plan
