"""MariaDB and MySQL tools as pure data: the connection (the password only in MYSQL_PWD), names,
quoting, the dump's banner and end marker, and the argv of mariadb-dump and the client."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from kompose.errors import ConfigError, NoDatabaseError

MAX_IDENTIFIER_CHARS = 64  # MariaDB and MySQL refuse longer database names
TEMP_SUFFIX = "__kompose_tmp"
PREV_SUFFIX = "__kompose_prev"
OLD_SUFFIX = "__kompose_old"  # the copy before the previous one, for the length of a swap (shorter than PREV_SUFFIX)
DRILL_SUFFIX = "__kompose_drill"
DUMP_COMPLETE_MARKER = b"-- Dump completed"
# the first lines mariadb-dump / mysqldump write (10.11.8+ first writes a sandbox-mode line)
DUMP_BANNERS = (b"-- MariaDB dump", b"-- MySQL dump", b"/*M!999999\\- enable the sandbox mode */")
ENGINES = ("mariadb", "mysql")
SECRET_VARIABLES = ("MARIADB_ROOT_PASSWORD", "MYSQL_ROOT_PASSWORD", "MARIADB_PASSWORD", "MYSQL_PASSWORD")
LOCK_WAIT_SECONDS = 30  # how long the swap waits for sessions holding the live tables, then fails
MAX_PACKET = "1G"  # rows with BLOBs of tens of MB: the client side never limits them


@dataclass(frozen=True)
class Connection:
    database: str
    user: str
    password: str
    port: str
    flavour: str = "mariadb"  # "mariadb" (mariadb-dump, mariadb) or "mysql" (mysqldump, mysql)
    host: str = "127.0.0.1"  # inside the container: TCP, so the password is really checked

    def exec_env(self) -> tuple[tuple[str, str], ...]:
        """Environment for the tool's exec: the password never goes into argv."""
        return (("MYSQL_PWD", self.password),) if self.password else ()

    def args(self) -> list[str]:
        return [f"--host={self.host}", f"--port={self.port}", f"--user={self.user}", "--protocol=tcp"]

    @property
    def dump_tool(self) -> str:
        return "mysqldump" if self.flavour == "mysql" else "mariadb-dump"

    @property
    def client_tool(self) -> str:
        return "mysql" if self.flavour == "mysql" else "mariadb"


def connection(env: Mapping[str, str], stack: str, flavour: str = "mariadb") -> Connection:
    """The stack's credentials. The root password of the common images (MARIADB_ROOT_PASSWORD,
    MYSQL_ROOT_PASSWORD) wins when set: an import creates and drops databases beside the
    app's, which the app's own user may not. Else DB_USER / DB_PASSWORD.

    Raises ConfigError when DB_NAME is missing or unusable.
    """
    database = env.get("DB_NAME", "")
    if not database:
        raise NoDatabaseError(f"stack {stack} has no database: DB_NAME is not set in its .env")
    check_name(database, PREV_SUFFIX)
    port = env.get("DB_PORT", "") or "3306"
    if not port.isdigit():
        raise ConfigError(f"DB_PORT={port!r} is not a port number")
    root_password = env.get("MARIADB_ROOT_PASSWORD", "") or env.get("MYSQL_ROOT_PASSWORD", "")
    if root_password:
        return Connection(database, "root", root_password, port, flavour)
    return Connection(database, env.get("DB_USER", "") or "root", env.get("DB_PASSWORD", ""), port, flavour)


def check_name(name: str, suffix: str = "") -> None:
    """Raise ConfigError for a database name MariaDB would refuse (with ``suffix``), or that
    cannot name a dump file (``/``), a line of output (control characters) or an argument."""
    if "\x00" in name:
        raise ConfigError("DB_NAME contains a NUL byte")
    if any(ord(char) < 32 or ord(char) == 127 for char in name):
        raise ConfigError(f"DB_NAME {name!r} contains a control character (a newline in a quoted value?)")
    if "/" in name or "\\" in name:
        raise ConfigError(f"DB_NAME {name!r} contains '/' or '\\': dump files are named after the database")
    if name.startswith("-") or name != name.rstrip(" "):
        raise ConfigError(f"DB_NAME {name!r} starts with '-' or ends with a space, which MariaDB tools refuse")
    size = len(name + suffix)
    if size > MAX_IDENTIFIER_CHARS:
        raise ConfigError(
            f"DB_NAME {name!r} is too long: with kompose's suffix {suffix!r} it is {size} characters and "
            f"MariaDB refuses names over {MAX_IDENTIFIER_CHARS}"
        )


def temp_name(database: str) -> str:
    return database + TEMP_SUFFIX


def prev_name(database: str) -> str:
    return database + PREV_SUFFIX


def old_name(database: str) -> str:
    return database + OLD_SUFFIX


def drill_name(database: str) -> str:
    return database + DRILL_SUFFIX


def ident(name: str) -> str:
    """A backquoted identifier."""
    return "`" + name.replace("`", "``") + "`"


def literal(value: str) -> str:
    """A string literal for kompose's own sessions (sql_mode without NO_BACKSLASH_ESCAPES)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def is_dump(head: bytes) -> bool:
    """Whether a plain dump's first bytes are mariadb-dump's / mysqldump's."""
    return head.lstrip().startswith(DUMP_BANNERS)


def lock_wait(env: Mapping[str, str]) -> int:
    """KOMPOSE_SWAP_LOCK_TIMEOUT: how many seconds the swap waits for sessions holding the
    live tables (an open transaction) before it fails and changes nothing. Raises ConfigError."""
    value = env.get("KOMPOSE_SWAP_LOCK_TIMEOUT", "").strip()
    if not value:
        return LOCK_WAIT_SECONDS
    if not value.isdigit() or not 1 <= int(value) <= 31536000:
        raise ConfigError(f"KOMPOSE_SWAP_LOCK_TIMEOUT={value!r} is not a number of seconds (1 or more)")
    return int(value)


def ending_problem(tail: bytes) -> str | None:
    """Why a dump ending in ``tail`` is not complete, or None: its last non-blank line must be
    the dump tool's ``-- Dump completed[ on <date>]`` (written only after everything else)."""
    for line in reversed(tail.split(b"\n")):
        if line.strip() in (b"", b"--"):
            continue
        if line.startswith(DUMP_COMPLETE_MARKER):
            return None
        break
    return "it does not end with the dump tool's '-- Dump completed' line"


def hook_prelude(variables, atomic: bool = False) -> bytes:
    """The first line(s) of a SQL hook's input: ``SET @name = <value>, …;`` with every value as a
    hex literal (no quoting to get wrong, whatever the session's sql_mode), utf8mb4; then
    ``START TRANSACTION;`` on a line of its own when ``atomic``."""
    values = {name: value for name, value in variables}  # the last one of a name wins
    sets = ", ".join(f"@{name} = CONVERT(X'{value.encode().hex()}' USING utf8mb4)" for name, value in values.items())
    line = f"SET {sets};\n" if sets else "DO 0;\n"
    return (line + ("START TRANSACTION;\n" if atomic else "")).encode()


# ------------------------------------------------------------------ argv


def dump_argv(conn: Connection, database: str | None = None) -> tuple[str, ...]:
    """A consistent dump of one database to stdout: one snapshot (--single-transaction, no table
    locks), routines, triggers and events, BLOBs as hex, utf8mb4; no CREATE DATABASE / USE, so
    it restores into any database (the temporary one). MySQL with GTIDs on (Debian's 9.7 is)
    would write ``SET @@GLOBAL.GTID_PURGED``, which a restore into the same server refuses:
    ``--set-gtid-purged=OFF`` (a copy of one database, not a replica's seed)."""
    gtid = ("--set-gtid-purged=OFF",) if conn.flavour == "mysql" else ()
    return (conn.dump_tool, *conn.args(), "--single-transaction", "--skip-lock-tables", "--routines",
            "--triggers", "--events", "--hex-blob", "--default-character-set=utf8mb4", *gtid,
            f"--max-allowed-packet={MAX_PACKET}", "--", database or conn.database)


def client_argv(conn: Connection, database: str | None = None) -> tuple[str, ...]:
    """The client reading SQL from stdin, stopping at the first error, rows tab-separated."""
    argv = [conn.client_tool, *conn.args(), "--batch", "--skip-column-names", "--default-character-set=utf8mb4",
            f"--max-allowed-packet={MAX_PACKET}"]
    if database:
        argv.append(f"--database={database}")
    return tuple(argv)


def restore_argv(conn: Connection, database: str) -> tuple[str, ...]:
    """Restore a dump from stdin into ``database`` (the client stops at the first error)."""
    return client_argv(conn, database)


_CONNECTION_LOST = (
    "Lost connection to server",
    "Lost connection to MySQL server",
    "server has gone away",
    "Can't connect to",
    "Connection refused",
)


def lost_connection(stderr: bytes) -> bool:
    text = stderr.decode("utf-8", "replace")
    return any(phrase in text for phrase in _CONNECTION_LOST)
