"""db:import: restore into a temporary database, run pre_swap hooks on it, then swap it in."""

from __future__ import annotations

from pathlib import Path

from kompose.dumps import files as dumps
from kompose.actions.common import admin_for, checked_and_recovered, database_container, find_hooks, new_stack_plan
from kompose.actions.common import rights_check, sql, version_check
from kompose.actions.common import own_plans, stack_engine
from kompose.host import swap_mark
from kompose.context import Context
from kompose.errors import DumpError
from kompose.plan.steps import CheckChecksum, CheckDump, CheckRestored, Exec, Note, Sql, StartChecksum
from kompose.plan.model import StackPlan
from kompose.run.dump_needs import CheckDumpNeeds, StartServerFacts
from kompose.stacks import Stack


RECOVER_WHAT = "check for leftovers of an interrupted import"
PUT_BACK_WHAT = ("put the owner, connection limit, ACL, comment and settings of %s back (held while it was restored "
                 "in place)")
ANALYZE_WHAT = "ANALYZE %s: planner statistics for every table before the app uses it"


def find_dump(stack_dir: Path, database: str, given: str | None) -> Path:
    """The dump to import: ``given`` (relative to the cwd, else ``stack_dir``: the stack's dump
    directory, KOMPOSE_DUMP_DIR or the stack directory) or the newest one.

    Raises DumpError when there is none, or when ``given`` lies outside that
    directory (symlinks resolved): an import reads only the stack's own dumps, so a
    pattern over several stacks can never restore one file into all of them.
    """
    existing = dumps.list_dumps(stack_dir, database)
    listing = ", ".join(d.path.name for d in existing[:10]) or "none"
    if not given:
        if not existing:
            raise DumpError(f"no dump of {database} in {stack_dir}; run db:export first")
        given = existing[0].path.name  # the newest: a symlink leading out is refused like a named one
    for candidate in (Path(given), stack_dir / given):
        if candidate.exists() or candidate.is_symlink():
            resolved = candidate.resolve()
            if not resolved.is_relative_to(stack_dir.resolve()):
                raise DumpError(f"dump {given} is outside the stack's dump directory {stack_dir}: copy it there first "
                                "(an import reads only the stack's own dumps)")
            if resolved.exists() and not resolved.is_file() and not resolved.is_dir():
                raise DumpError(f"{resolved} is not a regular file (a FIFO or a device?), not a dump")
            return resolved
    raise DumpError(f"dump {given} not found; dumps of {database} in {stack_dir}: {listing}")


def check_origin(path: Path, database: str, allow_other: bool) -> None:
    """Raise DumpError when the dump says it was made from another database (and that is not allowed)."""
    origin = dumps.dump_database(path)
    if origin is not None and origin != database and not allow_other:
        raise DumpError(f"{path.name} is a dump of database {origin}, not {database}; "
                        "pass --allow-other-database to import it anyway")


def restored_check(engine, container, conn, database: str, path: Path, fmt: str,
                   counts: bool = False, via=None, opened_early: bool = False) -> list[CheckRestored]:
    """Check, after the restore into ``database``, that it holds every table the dump has data for
    (PostgreSQL: the engine whose plain dumps stream through the guard). With ``via`` (kompose's
    admin connection) the check runs there, and the ANALYZE before the swap follows it in the same
    session (an engine without the guard: [], its plan runs its ANALYZE itself)."""
    analyze = [("then", engine.ANALYZE), ("then_what", ANALYZE_WHAT % database)] if via is not None else []
    if not engine.plain_guard:
        return []
    run_as = via or conn
    return [CheckRestored(container, database, engine.script_argv(run_as, database, ()), run_as.exec_env(), path,
                          fmt, counts, **dict(analyze), opened_early=opened_early)]


def drop_old(engine, container, conn, via) -> tuple[str, str, list[Sql]]:
    """After the swap: the copy the last import kept goes, in the background (its DROP DATABASE forces
    a checkpoint that writes out the whole restored database: the import is done once the new one
    is live). Optional: a drop that fails or does not finish leaves it to the next RECOVER.

    (the lines that end the swap's script and start the drop from its session, what the swap's
    description adds, []) — or, for a client that cannot start it, ("", "", [a detached exec])."""
    old, statements = engine.drop_old(conn)
    if not statements:
        return "", "", []
    argv = engine.commands_argv(via, engine.admin_database, statements)
    what = (f"drop {old}, the copy the last import kept, in the background (the new database is live; the next "
            f"command drops it if this does not finish)")
    if launch := engine.detach_from_script(argv):
        return launch, f"; then, from the same session: {what}", []
    return "", "", [Sql(container, engine.admin_database, "".join(f"{statement};\n" for statement in statements), (),
                        via.exec_env(), what, argv, optional=True, background=True)]


def plan(ctx: Context, stack: Stack, dump: str | None = None, in_place: bool = False,
         force: bool = False, allow_other_database: bool = False, no_owner: bool = False) -> StackPlan:
    """``force``: import a dump whose checksum differs from its manifest (with a warning);
    ``allow_other_database``: import a dump made from another database; ``no_owner``: every
    restored object belongs to DB_USER (the dump's owning roles need not exist here)."""
    stack_plan = new_stack_plan(ctx, stack, "db:import", lock=True)
    engine, why = stack_engine(ctx, stack, stack_plan)
    if own := own_plans(engine):
        return own.import_plan(ctx, stack, stack_plan, engine, why, dump, in_place, force, allow_other_database)
    conn = engine.connection(stack_plan.env, stack.name)
    path = find_dump(stack_plan.dump_dir, conn.database, dump)
    fmt, compression = dumps.detect(path)
    check_origin(path, conn.database, allow_other_database)
    container = database_container(ctx, stack, stack_plan.env)
    conn = engine.via(conn, container)  # a database outside Docker: over the network
    stack_plan.env["KOMPOSE_DUMP_FILE"] = str(path)
    hooks = find_hooks(ctx, stack, stack_plan, conn, container)
    tmp = engine.temp_name(conn.database)
    via, hint = admin_for(engine, stack_plan, conn, container)
    mark = swap_mark.mark_path(stack_plan.dump_dir)

    def admin(script: str, what: str, database: str | None = None, **extra):
        return sql(engine, container, conn, script, what, database, via=via, hint=hint, **extra)

    steps = stack_plan.steps
    # a plain dump's SET lines of parameters this server does not know (pg_dump 17's
    # transaction_timeout into PostgreSQL 15) are skipped; --no-owner skips its OWNER TO lines
    restore_options = {
        "settings_argv": engine.script_argv(conn, engine.admin_database, ())
        if fmt == "plain" and engine.name == "postgres" else (),
        "no_owner": no_owner and fmt == "plain",
    }
    steps += [
        Note(f"database {conn.database} in container {container.name}: {container.reason}"),
        *([Note(f"--no-owner: every restored object belongs to DB_USER ({conn.user}), whatever role owned it in "
                "the dump; grants are restored as they are")] if no_owner else []),
        # the temp-db swap restores into a copy nobody uses yet: the sha256 is computed while it
        # runs and must match before the swap; --in-place drops the live database, so it checks first
        CheckChecksum(path, force) if in_place else StartChecksum(path),
        CheckDump(path, fmt, compression),
    ]
    pre_hooks = hooks.steps("pre_db_import", str(path), dump_file=str(path))
    create_what = f"create the temporary database {tmp} (encoding, locale provider and locale of {conn.database})"
    check_version = version_check(engine, container, conn, path, fmt, compression)
    if in_place or pre_hooks:
        steps.append(check_version)
    if in_place:
        steps += [
            # before anything changes: kompose's admin connection works and has what it needs
            rights_check(engine, container, conn, via, hint, "db:import"),
            # --in-place: what the dump needs of the server is there, before any hook or drop
            CheckDumpNeeds(container, engine.script_argv(conn, engine.admin_database, ()), conn.exec_env(), path,
                           fmt, compression, no_owner),
            admin(engine.RECOVER, RECOVER_WHAT, mark=mark),
            *pre_hooks,
        ]
    elif pre_hooks:
        steps += [checked_and_recovered(engine, container, conn, via, hint, "db:import", mark), *pre_hooks,
                  admin(engine.CREATE_TEMP, create_what)]
    else:
        # before anything changes: the rights, then the leftovers, then the temporary database: one session
        # of the admin connection; the server's facts (DB_USER's session) are asked meanwhile
        steps += [StartServerFacts(container, check_version.argv, check_version.env),
                  checked_and_recovered(engine, container, conn, via, hint, "db:import", mark,
                                        engine.CREATE_TEMP, create_what),
                  check_version]
    if in_place:
        # also after a failed restore: the database is empty or partial, but keeps its own settings
        put_back = admin(engine.IN_PLACE_PROPERTIES, PUT_BACK_WHAT % conn.database)
        steps += [
            Note("--in-place: the live database is dropped before the restore; if the restore fails it stays "
                 "empty or partial (no previous copy is kept)"),
            admin(engine.RECREATE_IN_PLACE,
                  f"drop and recreate {conn.database} (same encoding, locale provider and locale; its owner, "
                  f"connection limit, ACL, comment and settings are held by an empty {tmp} meanwhile)"),
            Exec(container, engine.restore_argv(conn, conn.database, fmt, no_owner), conn.exec_env(), stdin_file=path,
                 what=f"restore {path.name} into {conn.database}", host_codec=compression,
                 guard=engine.plain_guard and fmt == "plain", **restore_options),
            # the restored tables, then ANALYZE: one session of the admin connection
            *(restored_check(engine, container, conn, conn.database, path, fmt, via=via)
              or [admin(engine.ANALYZE, ANALYZE_WHAT % conn.database, database=conn.database)]),
            put_back,
        ]
        stack_plan.on_failure.append(put_back)
    else:
        launch_drop, drop_what, drop_step = drop_old(engine, container, conn, via)
        # a bash hook that checks or scrubs the restored copy needs to know where it is:
        # docker exec "$KOMPOSE_DB_CONTAINER" psql -d "$KOMPOSE_DB" …
        pre_swap = hooks.steps("pre_swap", str(path), tmp, env={"KOMPOSE_DB": tmp, "KOMPOSE_DB_CONTAINER": container.name},
                               database=tmp, dump_file=str(path))
        checks = restored_check(engine, container, conn, tmp, path, fmt, via=via, opened_early=True)
        early_swap = bool(checks) and not pre_swap  # its session opens while the check runs (restore_checks)
        steps += [
            Exec(container, engine.restore_argv(conn, tmp, fmt, no_owner), conn.exec_env(), stdin_file=path,
                 what=f"restore {path.name} into {tmp}", host_codec=compression,
                 guard=engine.plain_guard and fmt == "plain", **restore_options),
            CheckChecksum(path, force, started=True),
            # what the dump promised is in the temporary database, before anything is swapped
            # then ANALYZE, in the same session of the admin connection
            *(checks or [admin(engine.ANALYZE, ANALYZE_WHAT % tmp, database=tmp)]),
            *pre_swap,
            admin(engine.SWAP + launch_drop,
                  f"swap: {conn.database} -> {engine.prev_name(conn.database)}, {tmp} -> {conn.database} "
                  f"(its owner, connection limit, ACL, comment and settings first; the copy the last import kept "
                  f"stays until the new one is live){drop_what}"
                  + ("; its psql session opened while the check runs, the script sent now" if early_swap else ""),
                  mark=mark, closes=True, opened_early=early_swap),
            *drop_step,
        ]
        # the reopen first, on its own: it must happen even when the drop cannot
        stack_plan.on_failure += [
            admin(engine.REOPEN, f"reopen {conn.database} if the swap left it closed", mark=mark),
            admin(engine.ABANDON, f"drop {tmp}; the live database stays as it was"),
        ]
    stack_plan.post += hooks.steps("post_db_import", str(path), dump_file=str(path))
    return stack_plan
