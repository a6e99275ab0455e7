"""PostgreSQL's tools as pure data: the connection, database names, the argv of pg_dump, psql and
pg_restore, and reading their failures. Nothing here runs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

from kompose.errors import ConfigError, NoDatabaseError, last_lines

MAX_IDENTIFIER_BYTES = 63  # PostgreSQL silently truncates longer names
TEMP_SUFFIX = "__kompose_tmp"
PREV_SUFFIX = "__kompose_prev"
OLD_SUFFIX = "__kompose_old"  # the previous copy of the last import, for the length of a swap
DRILL_SUFFIX = "__kompose_drill"
DUMP_COMPLETE_MARKER = b"-- PostgreSQL database dump complete"


@dataclass(frozen=True)
class Connection:
    database: str
    user: str
    password: str
    port: str
    host: str = "127.0.0.1"  # inside the container: TCP, so the password is really checked; "": the unix socket
    # how long pg_dump waits for a table another session has locked (KOMPOSE_LOCK_WAIT)
    lock_wait: float = 180.0  # DEFAULT_LOCK_WAIT

    def exec_env(self) -> tuple[tuple[str, str], ...]:
        """Environment for the tool's exec: the password never goes into argv."""
        return (("PGPASSWORD", self.password),) if self.password else ()

    def args(self) -> list[str]:
        host = [f"--host={self.host}"] if self.host else []
        return [*host, f"--port={self.port}", f"--username={self.user}", "--no-password"]

    def describe(self) -> str:
        where = f"TCP {self.host}:{self.port}" if self.host else "the container's unix socket"
        return f"{self.user} over {where}"


def admin_connection(env: Mapping[str, str], conn: Connection, local_superuser: str) -> Connection:
    """The connection kompose's swap, rollback, clean-up and ANALYZE run on (docs/reliability.md):
    DB_ADMIN_USER / DB_ADMIN_PASSWORD over TCP when set; else the container's own superuser
    (``local_superuser``: the image's POSTGRES_USER) over its unix socket, which the official
    image and kompose's trust. The restore itself runs as DB_USER."""
    user = env.get("DB_ADMIN_USER", "")
    if user:
        return Connection(conn.database, user, env.get("DB_ADMIN_PASSWORD", ""), conn.port)
    return Connection(conn.database, local_superuser or "postgres", "", conn.port, host="")


def uses_postgres(env: Mapping[str, str]) -> bool:
    return bool(env.get("DB_NAME"))


def connection(env: Mapping[str, str], stack: str) -> Connection:
    """The stack's database credentials. Raises ConfigError when DB_NAME is missing or unusable."""
    database = env.get("DB_NAME", "")
    if not database:
        raise NoDatabaseError(f"stack {stack} has no database: DB_NAME is not set in its .env")
    check_name(database, PREV_SUFFIX)
    port = env.get("DB_PORT", "") or "5432"
    if not port.isdigit():
        raise ConfigError(f"DB_PORT={port!r} is not a port number")
    return Connection(database, env.get("DB_USER", "") or "postgres", env.get("DB_PASSWORD", ""), port,
                      lock_wait=lock_wait_of(env))


LOCK_WAIT_KEY = "KOMPOSE_LOCK_WAIT"
DEFAULT_LOCK_WAIT = 180.0  # seconds: a few minutes, then the export fails naming who holds the lock
MAX_LOCK_WAIT = 86400.0


def lock_wait_of(env: Mapping[str, str]) -> float:
    """KOMPOSE_LOCK_WAIT in seconds (default DEFAULT_LOCK_WAIT). Raises ConfigError unless it is a
    number from 1 to MAX_LOCK_WAIT."""
    raw = env.get(LOCK_WAIT_KEY, "").strip()
    if not raw:
        return DEFAULT_LOCK_WAIT
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{LOCK_WAIT_KEY}={raw!r} is not a number of seconds") from None
    if not 1 <= value <= MAX_LOCK_WAIT:  # also nan and inf
        raise ConfigError(f"{LOCK_WAIT_KEY}={raw!r}: give a number of seconds from 1 to {MAX_LOCK_WAIT:g}")
    return value


def check_name(name: str, suffix: str = "") -> None:
    """Raise ConfigError for a database name PostgreSQL would refuse or truncate (with ``suffix``),
    or that cannot name a dump file (``/``) or a line of output (control characters)."""
    if "\x00" in name:
        raise ConfigError("DB_NAME contains a NUL byte")
    if any(ord(char) < 32 or ord(char) == 127 for char in name):
        raise ConfigError(f"DB_NAME {name!r} contains a control character (a newline in a quoted value?)")
    if "/" in name:
        raise ConfigError(f"DB_NAME {name!r} contains '/': dump files are named after the database, "
                          "and a file name cannot hold '/'")
    size = len((name + suffix).encode())
    if size > MAX_IDENTIFIER_BYTES:
        raise ConfigError(
            f"DB_NAME {name!r} is too long: with kompose's suffix {suffix!r} it is {size} bytes and "
            f"PostgreSQL would truncate names over {MAX_IDENTIFIER_BYTES}"
        )


def temp_name(database: str) -> str:
    return database + TEMP_SUFFIX


def prev_name(database: str) -> str:
    return database + PREV_SUFFIX


def old_name(database: str) -> str:
    return database + OLD_SUFFIX


# ------------------------------------------------------------------ argv


def dbname_arg(database: str) -> str:
    """``--dbname=`` for a database name. libpq reads a value holding '=' or starting with a
    URI scheme as a connection string, so such a name travels inside one, quoted."""
    if "=" in database or database.startswith(("postgresql://", "postgres://")):
        quoted = database.replace("\\", "\\\\").replace("'", "\\'")
        return f"--dbname=dbname='{quoted}'"
    return f"--dbname={database}"


def pg_dump_argv(conn: Connection, fmt: str, gzip_level: int = 0, output: str | None = None,
                 no_sync: bool = False) -> tuple[str, ...]:
    """pg_dump to stdout, or to the file ``output`` (a path where pg_dump runs); ``gzip_level``
    (plain only) makes pg_dump gzip its own output; ``no_sync``: the output is a pipe, which
    pg_dump must not fsync (kompose syncs the file it writes)."""
    # a table locked by another session: fail after lock_wait, never wait without end
    lock = [f"--lock-wait-timeout={int(conn.lock_wait * 1000)}"] if conn.lock_wait else []
    argv = ["pg_dump", *conn.args(), *lock, dbname_arg(conn.database)]
    if fmt == "custom":
        argv.append("--format=custom")
    elif gzip_level:
        argv.append(f"--compress={gzip_level}")
    if no_sync:
        argv.append("--no-sync")
    if output:
        argv.append(f"--file={output}")
    return tuple(argv)


def lock_wait_failed(stderr: bytes) -> bool:
    """Whether pg_dump gave up waiting for a table lock (its --lock-wait-timeout, which pg_dump
    implements as a statement_timeout around its LOCK TABLE statements)."""
    return (b"lock timeout" in stderr or b"could not obtain lock" in stderr
            or (b"statement timeout" in stderr and b"LOCK TABLE" in stderr))


def lock_holders_argv(dump_argv: tuple[str, ...]) -> tuple[str, ...]:
    """psql in the dumped database, with the connection of a pg_dump argv, reading LOCK_HOLDERS."""
    connect = [word for word in dump_argv[1:] if word.startswith(("--host=", "--port=", "--username=", "--dbname="))]
    return ("psql", *connect, "--no-password", "--no-psqlrc", "--quiet", "--tuples-only", "--no-align",
            "--set=ON_ERROR_STOP=1")


# the sessions holding a table lock that keeps pg_dump waiting: who, since when, doing what
LOCK_HOLDERS = r"""
SELECT format('session %s (user %s%s, %s%s): %s', a.pid, a.usename,
              CASE WHEN a.application_name <> '' THEN ', ' || a.application_name ELSE '' END,
              coalesce(a.state, 'unknown state'),
              CASE WHEN a.xact_start IS NOT NULL
                   THEN ', its transaction open for ' || date_trunc('second', now() - a.xact_start) ELSE '' END,
              left(regexp_replace(a.query, '\s+', ' ', 'g'), 80))
  FROM pg_stat_activity a
 WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
   AND EXISTS (SELECT 1 FROM pg_locks l
                WHERE l.pid = a.pid AND l.granted AND l.locktype = 'relation' AND l.mode = 'AccessExclusiveLock'
                  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()))
 ORDER BY a.xact_start NULLS LAST
 LIMIT 3;
"""


def restore_argv(conn: Connection, database: str, fmt: str) -> tuple[str, ...]:
    """Restore from stdin into ``database``: psql stops at the first error, pg_restore likewise.

    pg_restore restores exactly as psql does a plain dump: every object keeps its owner
    (no --no-owner, no --role): with a DB_USER that may not set an owner the restore fails
    (OWNERSHIP_HINT) instead of handing the objects to DB_USER. Never --create or --clean:
    it writes into ``database``, the temporary one, and nothing else."""
    if fmt == "custom":
        return ("pg_restore", *conn.args(), "--exit-on-error", dbname_arg(database))
    return ("psql", *conn.args(), "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1", "--output=/dev/null",
            dbname_arg(database))


def psql_script_argv(conn: Connection, database: str, variables: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    """psql reading a script from stdin, stopping at the first error, rows tab-separated."""
    argv = ["psql", *conn.args(), "--no-psqlrc", "--quiet", "--tuples-only", "--no-align",
            "--field-separator=\t", "--set=ON_ERROR_STOP=1", dbname_arg(database)]
    argv += [f"--set={key}={value}" for key, value in variables]
    argv.append("--file=-")
    return tuple(argv)


def psql_commands_argv(conn: Connection, database: str, commands: tuple[str, ...]) -> tuple[str, ...]:
    """psql running ``commands`` one ``--command`` each, in one session (no stdin: a detached exec)."""
    argv = ["psql", *conn.args(), "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1", dbname_arg(database)]
    argv += [f"--command={command}" for command in commands]
    return tuple(argv)


# what libpq and the server say when the connection, or the server, goes away mid-operation
_CONNECTION_LOST = (
    "server closed the connection unexpectedly",
    "terminating connection due to administrator command",
    "the database system is shutting down",
    "no connection to the server",
    "could not receive data from server",
    "could not send data to server",
    "Connection refused",
)


def lost_connection(stderr: bytes) -> bool:
    """Whether a tool's stderr says it lost its server (a container stopping, say)."""
    text = stderr.decode("utf-8", "replace")
    return any(phrase in text for phrase in _CONNECTION_LOST)


# psql's "where in kompose's own script" prefix and PL/pgSQL's CONTEXT lines say nothing to a user
_SCRIPT_PREFIX = re.compile(r"^psql:<stdin>:\d+: ")


def failure_message(tool: str, exit_code: int, stderr: bytes, own_script: bool = False) -> str:
    """One readable message from a tool's exit code and the last lines of its stderr.

    ``own_script``: the failing script is one of kompose's (SWAP, ROLLBACK, ...): where in it
    psql stopped, and PL/pgSQL's CONTEXT, are left out (a user's SQL hook keeps them).
    """
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines()]
    if own_script:
        lines = [_SCRIPT_PREFIX.sub("", line) for line in lines if not line.startswith("CONTEXT:")]
    detail = last_lines("\n".join(lines), empty="no error output")
    if tool in ("psql", "pg_restore") and _OWNERSHIP_ERROR.search(detail):
        return f"{OWNERSHIP_HINT} ({tool} failed (exit {exit_code}): {detail})"
    return f"{tool} failed (exit {exit_code}): {detail}"


# a restore setting an object's owner to a role DB_USER is not a member of
_OWNERSHIP_ERROR = re.compile(r"must be (a )?member of role|must be able to SET ROLE|must be owner of")
OWNERSHIP_HINT = ("the dump's objects belong to roles DB_USER may not give them to: restore as a superuser "
                  "DB_USER, or GRANT each owning role to DB_USER (kompose never re-owns objects)")


def drill_name(database: str) -> str:
    return database + DRILL_SUFFIX


def drill_variables(conn: Connection) -> tuple[tuple[str, str], ...]:
    """The variables of CREATE_TEMP / DROP_TEMP aimed at the drill database instead of the temporary one."""
    return (("live", conn.database), ("tmp", drill_name(conn.database)), ("owner", conn.user))


def variables(conn: Connection) -> tuple[tuple[str, str], ...]:
    db = conn.database
    return (("live", db), ("tmp", temp_name(db)), ("prev", prev_name(db)), ("old", old_name(db)), ("owner", conn.user))
