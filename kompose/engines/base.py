"""The Engine interface: what the actions (engine-neutral) ask of a database engine.

An engine builds, as pure data, everything that runs inside the database's own container: the
argv of its dump, restore and script tools, the scripts of the safe import (create the temporary
database, swap, roll back, recover after a kill, drop a leftover), names, and how to read its
tools' failures. It runs nothing; the steps that carry these run in kompose/run/.
"""

from __future__ import annotations

from typing import ClassVar, Mapping


class Engine:
    """One database engine. Every attribute below is part of the interface; an engine package
    (kompose/engines/<name>/) exposes one instance as ``ENGINE``."""

    name: ClassVar[str]
    # the database a script connects to when it must not use the stack's (to create, rename, drop it)
    admin_database: ClassVar[str]
    # bytes a complete plain dump ends with (a dump without them was cut short)
    complete_marker: ClassVar[bytes]
    temp_suffix: ClassVar[str]
    prev_suffix: ClassVar[str]
    drill_suffix: ClassVar[str]
    # the module (under kompose.actions) with this engine's own plans of db:export, db:import,
    # db:rollback and db:drill (export_plan, import_plan, rollback_plan, drill_plan), for an engine
    # whose safe import is not the scripts below run by Sql steps (MariaDB: no database rename).
    # "" (PostgreSQL): the actions' own plans.
    plans: ClassVar[str] = ""

    # scripts of the safe import, rollback and drill (run by a Sql step with variables(conn))
    CREATE_TEMP: ClassVar[str]
    DROP_TEMP: ClassVar[str]
    # before anything changes: the rights the admin connection needs for an import or rollback
    CHECK_RIGHTS: ClassVar[str]
    SWAP: ClassVar[str]
    ROLLBACK: ClassVar[str]
    RECOVER: ClassVar[str]
    ABANDON: ClassVar[str]
    # open the live database again when a swap left it closed (every failure's first clean-up)
    REOPEN: ClassVar[str]
    # planner statistics for the restored copy, before it goes live
    ANALYZE: ClassVar[str]
    RECREATE_IN_PLACE: ClassVar[str]
    IN_PLACE_PROPERTIES: ClassVar[str]
    ROW_COUNTS: ClassVar[str]
    # a script printing the database's size in bytes (the estimated total of an export's progress bar)
    SIZE_QUERY: ClassVar[str] = ""
    # run in the live database before a dump (as DB_USER); it fails with one line when the dump
    # would not be complete (PostgreSQL: row-level security hiding rows). "" for none
    EXPORT_CHECK: ClassVar[str] = ""
    # run after EXPORT_CHECK in the same session: prints LEFTOVERS_LINE when RECOVER has something
    # to repair, so an export runs RECOVER only then. "" for none (RECOVER then always runs first)
    EXPORT_LEFTOVERS: ClassVar[str] = ""
    LEFTOVERS_LINE: ClassVar[str] = ""
    # a plain dump is a psql script that restores through dumps.plain_sql's guard
    plain_guard: ClassVar[bool] = False

    def uses(self, env: Mapping[str, str]) -> bool:
        """Whether the stack has a database at all (DB_NAME set)."""
        raise NotImplementedError

    def connection(self, env: Mapping[str, str], stack: str):
        """The stack's credentials (a frozen object with ``database``, ``user``, ``exec_env()``);
        raises NoDatabaseError / ConfigError."""
        raise NotImplementedError

    def check_name(self, name: str, suffix: str = "") -> None:
        raise NotImplementedError

    def admin_connection(self, env: Mapping[str, str], conn, container) -> tuple:
        """(the connection kompose's database-level steps run on, a hint for when it cannot connect)."""
        raise NotImplementedError

    def temp_name(self, database: str) -> str:
        return database + self.temp_suffix

    def prev_name(self, database: str) -> str:
        return database + self.prev_suffix

    def drill_name(self, database: str) -> str:
        return database + self.drill_suffix

    def dump_argv(self, conn, fmt: str, gzip_level: int = 0, output: str | None = None,
                  no_sync: bool = False) -> tuple[str, ...]:
        raise NotImplementedError

    def via(self, conn, container):
        """The connection as the tools in ``container`` make it: a tools container of a database
        outside Docker (``container.network`` = "host:port") connects there, others to their own server."""
        return conn

    def restore_argv(self, conn, database: str, fmt: str, no_owner: bool = False) -> tuple[str, ...]:
        """``no_owner``: every restored object belongs to the user running the restore (DB_USER)."""
        raise NotImplementedError

    def script_argv(self, conn, database: str, variables: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
        """The engine's client reading a script from stdin, stopping at the first error."""
        raise NotImplementedError

    def drop_old(self, conn) -> tuple[str, tuple[str, ...]]:
        """(the name of the copy the last import kept, the statements dropping it): run after a swap
        without kompose waiting for them (commands_argv); ("", ()) when the SWAP script drops it itself."""
        return "", ()

    def detach_from_script(self, argv: tuple[str, ...]) -> str:
        """Lines that end a script of ``script_argv``: start ``argv`` in the container, detached (its
        output discarded, not waited for), without failing the script; "" when the client cannot
        (the plan then starts it as a detached exec of its own)."""
        return ""

    def commands_argv(self, conn, database: str, commands: tuple[str, ...]) -> tuple[str, ...]:
        """The engine's client running ``commands`` in one session, with no stdin (a detached exec)."""
        raise NotImplementedError

    # SQL hooks (hooks/kinds/sql.py): how the client names a line of its input in an error, as
    # (text before, line number) groups; the hook's own file and line replace it
    hook_line: ClassVar[str] = r"()<stdin>:(\d+)"
    # what a failed ATOMIC directory of SQL hooks left
    hook_rolled_back: ClassVar[str] = "rolled back: nothing of this directory took effect"

    def hook_argv(self, conn, database: str, variables: tuple[tuple[str, str], ...], atomic: bool) -> tuple[str, ...]:
        """The client running a SQL hook's files (read on stdin) in ``database``, stopping at the first
        error; ``atomic``: all of them in one transaction."""
        raise NotImplementedError

    def hook_input(self, argv: tuple[str, ...], text: str, static: tuple[tuple[str, str], ...],
                   told: tuple[tuple[str, str], ...], atomic: bool) -> tuple[tuple[str, ...], bytes, int]:
        """(argv, stdin, lines before ``text``) of one run of a SQL hook: ``argv`` from hook_argv (which
        had ``static``), ``told``: the values known when it runs (run id, status, hook context). Values
        never become SQL text unquoted."""
        raise NotImplementedError

    def variables(self, conn) -> tuple[tuple[str, str], ...]:
        """The script variables of the safe import (live, tmp, prev names...)."""
        raise NotImplementedError

    def drill_variables(self, conn) -> tuple[tuple[str, str], ...]:
        raise NotImplementedError

    def failure_message(self, tool: str, exit_code: int, stderr: bytes, own_script: bool = False) -> str:
        raise NotImplementedError

    def lock_wait_failed(self, stderr: bytes) -> bool:
        """Whether the dump tool gave up waiting for a lock another session holds."""
        return False

    def lock_holders(self, dump_argv: tuple[str, ...]) -> tuple[tuple[str, ...], str]:
        """(argv, script) of the engine's client listing the sessions holding such locks, one line each."""
        raise NotImplementedError

    def lost_connection(self, stderr: bytes) -> bool:
        raise NotImplementedError
