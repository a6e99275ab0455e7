"""db:export: pg_dump of the stack's database into <dump>.partial, verified, described by a
manifest, renamed.

pg_dump runs either in the database container, streamed over the exec socket, or (the
direct transport) in a helper container that writes the file itself; see transport.py.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from kompose.dumps import codecs
from kompose.dumps import files as dumps
from kompose.docker import transport
from kompose.actions import db_push
from kompose.actions.common import database_container, find_hooks, new_stack_plan
from kompose.actions.common import own_plans, stack_engine
from kompose.actions.common import RECOVER_WHAT, admin_for, sql
from kompose.host import swap_mark
from kompose.context import Context
from kompose.errors import UsageError
from kompose.repositories import restic
from kompose.plan.steps import DumpInHelper, Exec, HELPER_MOUNT, Note, Remove, RemoveHelpers, RemoveStale, Rename, VerifyDump, WriteManifest
from kompose.plan.model import StackPlan
from kompose.run.export_checks import ExportCheck
from kompose.stacks import Stack

EXPORT_CHECK_WHAT = "check that the dump can be complete (no row-level security hides rows from DB_USER)"
FORMATS = tuple(dumps.EXTENSIONS)
# the named pipe of a direct plain export: a ".partial" name, so an interrupted export's
# leftover pipe is removed like its partial dump
PIPE_SUFFIX = ".pipe" + dumps.PARTIAL_SUFFIX


def plan(ctx: Context, stack: Stack, fmt: str | None = None, compress: str | None = None,
         transport_name: str = "auto") -> StackPlan:
    """``fmt``/``compress`` None: the stack's KOMPOSE_EXPORT_FORMAT / KOMPOSE_EXPORT_COMPRESS, else plain, none."""
    stack_plan = new_stack_plan(ctx, stack, "db:export", lock=True)
    engine, why = stack_engine(ctx, stack, stack_plan)
    if own := own_plans(engine):
        return own.export_plan(ctx, stack, stack_plan, engine, why, fmt, compress, transport_name)
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
    conn = engine.connection(env, stack.name)
    found = db_push.repositories(env)  # restic missing, no password: said before anything runs
    container = database_container(ctx, stack, env)
    conn = engine.via(conn, container)  # a database outside Docker: over the network
    via, hint = admin_for(engine, stack_plan, conn, container)
    final = dumps.dump_path(stack_plan.dump_dir, conn.database, fmt, datetime.now(), codec)
    partial = final.with_name(final.name + dumps.PARTIAL_SUFFIX)
    env["KOMPOSE_DUMP_FILE"] = str(final)
    # the timestamp in the dump's name (a second later when that name was taken), for hooks
    # that write companion files (a schema snapshot) to pair with the dump
    env["KOMPOSE_DUMP_TIMESTAMP"] = final.name[len(conn.database) + 1:][:len("YYYYmmdd_HHMMSS")]
    hooks = find_hooks(ctx, stack, stack_plan, conn, container)
    if not restic.local_dumps(env):
        return _stream_plan(stack, stack_plan, engine, conn, container, via, hint, final, hooks, found, fmt, compression)
    choice = transport.choose(transport_name, ctx.process_env, stack_plan.dump_dir,
                              previous_size=_previous_size(stack_plan.dump_dir, conn.database, fmt))
    if container.network:
        choice = transport.Choice("exec", "the database is outside Docker: pg_dump runs in the tools container")
    if codec == "zstd" and choice.name == "direct":
        # zstd compresses on the host, in the stream: only the exec transport has one
        if choice.forced:
            raise UsageError("--compress zstd needs --transport exec: the host compresses the exec stream")
        choice = transport.Choice("exec", "zstd compresses on the host, which needs the exec stream")
    # gzip: pg_dump compresses inside the container, so fewer bytes leave it;
    # zstd: PostgreSQL 15's pg_dump has none, the host compresses (docs/operations.md)
    gzip_level = compression.level if codec == "gzip" else 0
    what = f"pg_dump {conn.database} ({fmt}{', ' + str(compression) if compression else ''}, {choice.name})"
    # a direct plain dump goes through a named pipe that kompose copies into the partial (see DumpInHelper)
    pipe = final.with_name(final.name + PIPE_SUFFIX) if choice.name == "direct" and fmt == "plain" else None
    if choice.name == "direct":
        dump_step = DumpInHelper(
            container,
            engine.dump_argv(conn, fmt, gzip_level, output=f"{HELPER_MOUNT}/{(pipe or partial).name}",
                                  no_sync=pipe is not None),
            conn.exec_env(), stack_plan.dump_dir, partial, transport.helper_user(choice.forced and _rootless(ctx)),
            what=what, pipe=pipe,
        )
    else:
        dump_step = Exec(container, engine.dump_argv(conn, fmt, gzip_level), conn.exec_env(), stdout_file=partial,
                         what=what, host_codec="zstd" if codec == "zstd" else "",
                         host_level=compression.level if codec == "zstd" else 0)
    checks = _checks(engine, container, conn, via, hint, swap_mark.mark_path(stack_plan.dump_dir))
    pre = hooks.steps("pre_db_export")
    dump_steps = [*checks, *pre, dump_step]
    if (not pre and isinstance(dump_step, Exec) and len(checks) == 1 and isinstance(checks[0], ExportCheck)
            and dict(checks[0].check.env) == dict(dump_step.env)):
        # the check beside pg_dump in one exec: nothing runs between them (run/export_checks.py)
        dump_steps = [replace(checks[0], dump=dump_step)]
    stack_plan.steps += [
        Note(f"database {conn.database} in container {container.name}: {container.reason}"),
        Note(f"transport {choice.name}: {choice.reason}"),
        # safe under the stack's lock: no other export of this stack is running
        RemoveHelpers(stack_plan.dump_dir, "left by an interrupted export"),
        RemoveStale(stack_plan.dump_dir, dumps.stale_partial_glob(conn.database), "left by an interrupted export"),
        # and no import: the next run after a crash, whatever it is, cleans up (a live database
        # a killed swap left closed could not even be dumped); the dump does not depend on it;
        # a dump never lacks rows a policy hides: refused before anything runs
        *dump_steps,
        VerifyDump(partial, fmt, codec, container),
        # the manifest first: a dump under its final name always has one
        WriteManifest(final, stack.name, conn.database, fmt, codec, container, source=partial),
        Rename(partial, final),
        # off the host: a snapshot per repository, of the verified dump and its manifest
        *db_push.copy_steps(stack, hooks, final, conn.database, found),
    ]
    stack_plan.post += hooks.steps("post_db_export", str(final), dump_file=str(final))
    leftovers = (partial, pipe) if pipe else (partial,)
    stack_plan.on_failure.append(Remove(leftovers, "an unfinished dump is never left behind"))
    return stack_plan


def _checks(engine, container, conn, via, hint, mark) -> list:
    """RECOVER and the export check; folded into one step (one exec when there is nothing to
    recover, run/export_checks.py) when the engine can tell leftovers in the check's session."""
    recover = sql(engine, container, conn, engine.RECOVER, RECOVER_WHAT, optional=True, via=via, hint=hint, mark=mark)
    if not engine.EXPORT_CHECK:
        return [recover]
    check = sql(engine, container, conn, engine.EXPORT_CHECK + engine.EXPORT_LEFTOVERS, EXPORT_CHECK_WHAT,
                database=conn.database)
    if not engine.EXPORT_LEFTOVERS:
        return [recover, check]
    return [ExportCheck(check, recover, engine.LEFTOVERS_LINE)]


def _stream_plan(stack: Stack, stack_plan: StackPlan, engine, conn, container, via, hint, final, hooks,
                 found, fmt: str, compression) -> StackPlan:
    """KOMPOSE_LOCAL_DUMPS=no: pg_dump's output streamed into each repository (StreamDump), checked
    in flight; no file in the dump directory (a host without room for one)."""
    what = f"pg_dump {conn.database} (plain, exec, streamed)"
    streamed = db_push.stream_steps(stack, stack_plan, conn.database, container, engine.dump_argv(conn, "plain", 0),
                                    conn.exec_env(), final, hooks, found, what, fmt, compression)
    stack_plan.steps += [
        Note(f"database {conn.database} in container {container.name}: {container.reason}"),
        Note(f"{restic.LOCAL_DUMPS}=no: no local dump; the stream goes into {len(found)} repositor"
             f"{'y' if len(found) == 1 else 'ies'}, checked as it passes"),
        *_checks(engine, container, conn, via, hint, swap_mark.mark_path(stack_plan.dump_dir)),
        *hooks.steps("pre_db_export"),
        *streamed,
    ]
    stack_plan.post += hooks.steps("post_db_export", final.name, dump_file=final.name)
    return stack_plan


def _previous_size(directory, database: str, fmt: str) -> int | None:
    """The size of the stack's newest dump of this format, uncompressed only (a compressed one
    says little about the stream); None without one."""
    for dump in dumps.list_dumps(directory, database):
        if dump.format == fmt and not dump.compression:
            try:
                return dump.path.stat().st_size
            except OSError:
                return None
    return None


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
