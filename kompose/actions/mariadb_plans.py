"""The plans of db:export, db:import and db:rollback for a stack on MariaDB or MySQL.

The same steps and guarantees as PostgreSQL's (actions/db_export.py, db_import.py,
db_rollback.py): the server's own tools run inside its container, the password travels in the
exec environment (MYSQL_PWD), a dump is complete only with its end marker and is renamed from
its .partial after its manifest is written; an import restores into <db>__kompose_tmp, runs
the pre_swap hooks on it, then swaps table by table in ONE RENAME TABLE statement (see
engines/mariadb/sql.py); the previous tables stay in <db>__kompose_prev for db:rollback (the
copy before them leaves it in that same RENAME, for <db>__kompose_old, dropped after).

Which engine a stack is on: actions/common.stack_engine (DB_ENGINE, else its container); the
actions come here through Engine.plans.
"""

from __future__ import annotations

from datetime import datetime

from kompose.actions.common import database_container, find_hooks
from kompose.context import Context
from kompose.dumps import codecs
from kompose.dumps import files as dumps
from kompose.engines.mariadb import sql as mariadb
from kompose.errors import DumpError, UsageError
from kompose.plan.steps import (
    CheckChecksum, CheckDump, Exec, Note, RecordDrill, Remove, RemoveStale, Rename, StartChecksum, VerifyDump,
    WriteManifest,
)
from kompose.plan.model import StackPlan
from kompose.stacks import Stack

RECOVER_WHAT = "check for leftovers of an interrupted import"


def _connection(stack_plan: StackPlan, stack: Stack, engine) -> mariadb.Connection:
    return engine.connection(stack_plan.env, stack.name)


def _setup(ctx, stack, stack_plan, engine):
    """(conn, container, hooks) of a MariaDB stack (its sql/ hooks run by the server's own client)."""
    conn = _connection(stack_plan, stack, engine)
    container = database_container(ctx, stack, stack_plan.env)
    hooks = find_hooks(ctx, stack, stack_plan, conn, container)
    return conn, container, hooks


def _exec(container, conn, argv, what, **kwargs) -> Exec:
    return Exec(container, argv, conn.exec_env(), what=what, **kwargs)


def _notes(conn, container, engine, why) -> list[Note]:
    return [Note(f"database {conn.database} in container {container.name}: {container.reason}"),
            Note(f"engine {engine.name} ({why}): {conn.dump_tool} and {conn.client_tool} in the container, "
                 f"as {conn.user}, the password in the exec environment")]


def export_plan(ctx: Context, stack: Stack, stack_plan: StackPlan, engine, why: str,
                fmt: str | None, compress: str | None, transport_name: str) -> StackPlan:
    env = stack_plan.env
    notes: list[Note] = []
    # a format or compression the root .env sets for every stack falls back here, with a note;
    # on the command line, for this stack, it is an error
    if fmt is None and env.get("KOMPOSE_EXPORT_FORMAT", "").strip() not in ("", "plain"):
        notes.append(Note(f"KOMPOSE_EXPORT_FORMAT={env['KOMPOSE_EXPORT_FORMAT'].strip()} is for PostgreSQL: "
                          f"a {engine.name} dump is plain SQL"))
    fmt = fmt or "plain"
    if fmt != "plain":
        raise UsageError(f"--format {fmt}: a {engine.name} dump is plain SQL (mariadb-dump has no custom format)")
    if transport_name not in ("auto", "exec"):
        raise UsageError(f"--transport {transport_name}: a {engine.name} dump streams over the exec socket only")
    compression = codecs.parse(compress if compress is not None else env.get("KOMPOSE_EXPORT_COMPRESS", ""))
    codec = compression.codec if compression else ""
    if codec == "gzip":
        if compress is not None:
            raise UsageError(f"--compress gzip: {conn_tool(engine.name)} cannot compress; use --compress zstd "
                             "(the host compresses the stream)")
        notes.append(Note(f"KOMPOSE_EXPORT_COMPRESS={env['KOMPOSE_EXPORT_COMPRESS'].strip()}: gzip is compressed by "
                          f"pg_dump, which a {engine.name} stack does not have; not compressed (zstd would be)"))
        compression, codec = None, ""
    if codec == "zstd":
        codecs.zstd_program()
    from kompose.actions import db_push

    found = db_push.repositories(env)  # restic missing, no password: said before anything runs
    conn, container, hooks = _setup(ctx, stack, stack_plan, engine)
    final = dumps.dump_path(stack_plan.dump_dir, conn.database, "plain", datetime.now(), codec)
    partial = final.with_name(final.name + dumps.PARTIAL_SUFFIX)
    env["KOMPOSE_DUMP_FILE"] = str(final)
    from kompose.repositories import restic

    if not restic.local_dumps(env):  # KOMPOSE_LOCAL_DUMPS=no: the dump streamed into the repositories
        streamed = db_push.stream_steps(stack, stack_plan, conn.database, container, mariadb.dump_argv(conn),
                                        conn.exec_env(), final, hooks, found,
                                        f"{conn.dump_tool} {conn.database} (plain, exec, streamed)", "plain",
                                        compression)
        stack_plan.steps += [
            *_notes(conn, container, engine, why),
            *notes,
            Note(f"{restic.LOCAL_DUMPS}=no: no local dump; the stream goes into {len(found)} repositor"
                 f"{'y' if len(found) == 1 else 'ies'}, checked as it passes"),
            _exec(container, conn, mariadb.recover_argv(conn), RECOVER_WHAT),
            *hooks.steps("pre_db_export"),
            *streamed,
        ]
        stack_plan.post += hooks.steps("post_db_export", final.name, dump_file=final.name)
        return stack_plan
    what = f"{conn.dump_tool} {conn.database} (plain{', ' + str(compression) if compression else ''}, exec)"
    stack_plan.steps += [
        *_notes(conn, container, engine, why),
        *notes,
        RemoveStale(stack_plan.dump_dir, dumps.stale_partial_glob(conn.database), "left by an interrupted export"),
        _exec(container, conn, mariadb.recover_argv(conn), RECOVER_WHAT),
        *hooks.steps("pre_db_export"),
        _exec(container, conn, mariadb.dump_argv(conn), what, stdout_file=partial, host_codec=codec,
              host_level=compression.level if codec else 0),
        VerifyDump(partial, "plain", codec, container),
        WriteManifest(final, stack.name, conn.database, "plain", codec, container, source=partial),
        Rename(partial, final),
        # off the host: a snapshot per repository, of the verified dump and its manifest
        *db_push.copy_steps(stack, hooks, final, conn.database, found),
    ]
    stack_plan.post += hooks.steps("post_db_export", str(final), dump_file=str(final))
    stack_plan.on_failure.append(Remove((partial,), "an unfinished dump is never left behind"))
    return stack_plan


def conn_tool(engine: str) -> str:
    return "mysqldump" if engine == "mysql" else "mariadb-dump"


def _local_dump(stack_plan: StackPlan, stack: Stack, engine, database: str, dump: str | None):
    """(path, format, compression) of the stack's dump ``dump`` (default: the newest), refused with
    one line unless it is a plain dump from mariadb-dump or mysqldump."""
    from kompose.actions.db_import import find_dump

    path = find_dump(stack_plan.dump_dir, database, dump)
    fmt, compression = dumps.detect(path)
    head, _ = dumps.plain_ends(path, compression) if fmt == "plain" else (b"", b"")
    if fmt != "plain" or not mariadb.is_dump(head):
        raise DumpError(f"{path.name} is not a dump from mariadb-dump or mysqldump (stack {stack.name} is on "
                        f"{engine.name})")
    return path, fmt, compression


def import_plan(ctx: Context, stack: Stack, stack_plan: StackPlan, engine, why: str,
                dump: str | None, in_place: bool, force: bool, allow_other_database: bool) -> StackPlan:
    from kompose.actions.db_import import check_origin

    conn = _connection(stack_plan, stack, engine)
    path, fmt, compression = _local_dump(stack_plan, stack, engine, conn.database, dump)
    check_origin(path, conn.database, allow_other_database)
    conn, container, hooks = _setup(ctx, stack, stack_plan, engine)
    stack_plan.env["KOMPOSE_DUMP_FILE"] = str(path)
    if in_place:
        return _in_place(stack_plan, engine, why, conn, container, hooks, path, compression, force)
    tmp, prev, old = (mariadb.temp_name(conn.database), mariadb.prev_name(conn.database),
                      mariadb.old_name(conn.database))
    stack_plan.steps += [
        *_notes(conn, container, engine, why),
        StartChecksum(path),
        CheckDump(path, fmt, compression),
        _exec(container, conn, mariadb.recover_argv(conn), RECOVER_WHAT),
        *hooks.steps("pre_db_import", str(path), dump_file=str(path)),
        _exec(container, conn, mariadb.create_temp_argv(conn),
              f"create the temporary database {tmp} (the character set and collation of {conn.database})"),
        _exec(container, conn, mariadb.restore_argv(conn, tmp), f"restore {path.name} into {tmp}",
              stdin_file=path, host_codec=compression),
        CheckChecksum(path, force, started=True),
        *hooks.steps("pre_swap", str(path), tmp, env={"KOMPOSE_DB": tmp, "KOMPOSE_DB_CONTAINER": container.name},
                     database=tmp, dump_file=str(path)),
        _exec(container, conn, mariadb.swap_argv(conn, mariadb.lock_wait(stack_plan.env)),
              f"swap: every table of {prev} -> {old}, of {conn.database} -> {prev}, of {tmp} -> {conn.database}, "
              f"in one RENAME TABLE; then triggers, routines, events and views; drop {old}"),
    ]
    stack_plan.on_failure.append(
        _exec(container, conn, mariadb.abandon_argv(conn), f"drop {tmp}; the live database stays as it was"))
    stack_plan.post += hooks.steps("post_db_import", str(path), dump_file=str(path))
    return stack_plan


def _in_place(stack_plan: StackPlan, engine, why: str, conn, container, hooks, path, compression: str,
              force: bool) -> StackPlan:
    """db:import --in-place: for a user who may not create databases beside the app's, or a disk without
    room for two copies. The live database is emptied (every table, view, trigger, routine, event;
    the database, its character set and collation and the grants on it stay) and the dump restored
    into it. No previous copy is kept, no pre_swap hook runs; a failed restore leaves it partial."""
    stack_plan.steps += [
        *_notes(conn, container, engine, why),
        Note("--in-place: the live database is emptied before the restore; if the restore fails it stays empty "
             "or partial (no previous copy is kept, db:rollback has nothing to return to)"),
        # it drops the live data: the dump is checked in full first
        CheckChecksum(path, force),
        CheckDump(path, "plain", compression),
        _exec(container, conn, mariadb.recover_argv(conn), RECOVER_WHAT),
        *hooks.steps("pre_db_import", str(path), dump_file=str(path)),
        _exec(container, conn, mariadb.empty_argv(conn),
              f"empty {conn.database}: drop its tables, views, triggers, routines and events (the database and "
              "the grants on it stay)"),
        _exec(container, conn, mariadb.restore_argv(conn, conn.database), f"restore {path.name} into {conn.database}",
              stdin_file=path, host_codec=compression),
    ]
    stack_plan.post += hooks.steps("post_db_import", str(path), dump_file=str(path))
    return stack_plan


def rollback_plan(ctx: Context, stack: Stack, stack_plan: StackPlan, engine, why: str) -> StackPlan:
    conn, container, hooks = _setup(ctx, stack, stack_plan, engine)
    prev = mariadb.prev_name(conn.database)
    stack_plan.steps += [
        *_notes(conn, container, engine, why),
        _exec(container, conn, mariadb.recover_argv(conn), RECOVER_WHAT),
        *hooks.steps("pre_db_rollback"),
        _exec(container, conn, mariadb.rollback_argv(conn, mariadb.lock_wait(stack_plan.env)),
              f"swap {prev} <-> {conn.database} (one RENAME TABLE; then triggers, routines, events and views)"),
    ]
    stack_plan.post += hooks.steps("post_db_rollback")
    return stack_plan


def drill_plan(ctx: Context, stack: Stack, stack_plan: StackPlan, engine, why: str, dump: str | None = None,
               from_repository: bool = False) -> StackPlan:
    """db:drill: the dump restored into <db>__kompose_drill in the server's own container, its tables
    and their rows checked against the dump's INSERT statements (and its manifest), the drill hooks
    run against it, dropped after, a failure too. The live database is never touched."""
    from kompose.actions.db_drill import STATE_FILE
    from kompose.run.mariadb_steps import CheckRestoredRows

    conn = _connection(stack_plan, stack, engine)
    mariadb.check_name(conn.database, mariadb.DRILL_SUFFIX)
    pull, after = [], []
    if from_repository:  # the newest copy (or snapshot ``dump``), pulled into a scratch directory, removed after
        from kompose.actions.db_pull import scratch_pull

        path, fmt, compression, pull, scratch = scratch_pull(ctx, stack, stack_plan, conn.database, dump)
        after = [scratch]
    else:
        path, fmt, compression = _local_dump(stack_plan, stack, engine, conn.database, dump)
    if fmt != "plain":
        raise DumpError(f"{path.name} is not a plain SQL dump (stack {stack.name} is on {engine.name})")
    conn, container, hooks = _setup(ctx, stack, stack_plan, engine)
    drill = mariadb.drill_name(conn.database)
    stack_plan.env["KOMPOSE_DUMP_FILE"] = str(path)
    drop = _exec(container, conn, mariadb.drop_argv(conn, drill, f"dropped the drill database {drill}"),
                 f"drop the drill database {drill}")
    record = RecordDrill(stack_plan.dump_dir / STATE_FILE, path)
    stack_plan.steps += [
        *_notes(conn, container, engine, why),
        Note(f"drill: restore {path.name} into {drill}, check its tables and rows, run the drill hooks, drop it; "
             f"{conn.database} is not touched"),
        *pull,
        CheckChecksum(path),
        CheckDump(path, fmt, compression),
        _exec(container, conn, mariadb.recover_argv(conn), RECOVER_WHAT),
        _exec(container, conn, mariadb.create_temp_argv(conn, drill),
              f"create the drill database {drill} (the character set and collation of {conn.database})"),
        _exec(container, conn, mariadb.restore_argv(conn, drill), f"restore {path.name} into {drill}",
              stdin_file=path, host_codec=compression),
        # every table with the rows the dump holds and its manifest records
        CheckRestoredRows(container, drill, mariadb.row_counts_argv(conn, drill), conn.exec_env(), path, compression),
        # the smoke test: every hook of the drill point, aimed at the drill database
        *hooks.steps("drill", str(path), drill, env={"KOMPOSE_DB": drill, "KOMPOSE_DB_CONTAINER": container.name},
                     database=drill, dump_file=str(path)),
        drop,
        record,
        *after,
    ]
    stack_plan.on_failure += [drop, record, *after]
    return stack_plan
