"""Pure builders for PostgreSQL: tool argv, database names, and the SQL of the safe swap.

Values never reach SQL by pasting: scripts use psql variables (:"ident", :'literal'),
and DO blocks read them back with current_setting() and quote with format('%I').
"""

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


# ------------------------------------------------------------------- SQL

# Connections to the maintenance database "postgres" as kompose's admin (admin_connection);
# variables: live, tmp, prev, old, owner.


def _exists(variable: str) -> str:
    """Sets the psql variable ``<variable>_exists``: whether the database named by ``:variable`` exists."""
    return f"SELECT count(*) > 0 AS {variable}_exists FROM pg_database WHERE datname = :'{variable}' \\gset\n"


def _drop(variable: str) -> str:
    """Drop the database named by ``:variable`` if it exists, whoever is connected to it.

    Client sessions are ended first (each one this role may end); DROP DATABASE then tells
    autovacuum workers to quit by itself, which needs no right at all, where WITH (FORCE)
    would refuse a non-superuser an autovacuum worker ("must be a member of the role whose
    process is being terminated"): a worker analysing a freshly restored copy is the rule."""
    return (
        f"SELECT set_config('kompose.drop', :'{variable}', false) AS dropping \\gset\n"
        + r"""DO $end$
DECLARE
  session record;
BEGIN
  FOR session IN SELECT pid FROM pg_stat_activity
    WHERE datname = current_setting('kompose.drop') AND pid <> pg_backend_pid() AND backend_type = 'client backend'
  LOOP
    BEGIN
      PERFORM pg_terminate_backend(session.pid);
    EXCEPTION WHEN insufficient_privilege THEN
      NULL;  -- DROP DATABASE names the session it cannot go past
    END;
  END LOOP;
END
$end$;
"""
        + f'DROP DATABASE IF EXISTS :"{variable}";\n'
    )


# Everything about the live database that CREATE DATABASE fixes for good: encoding, locale
# provider, ICU (or builtin) locale, collate, ctype, tablespace. psql's SERVER_VERSION_NUM
# picks the catalogue columns the server has (15 added the provider, 17 renamed its locale).
_READ_LIVE_LOCALE = r"""SELECT :SERVER_VERSION_NUM >= 150000 AS v15, :SERVER_VERSION_NUM >= 170000 AS v17 \gset
\if :v17
SELECT datlocprovider AS live_provider, coalesce(datlocale, '') AS live_locale FROM pg_database WHERE datname = :'live' \gset
\elif :v15
SELECT datlocprovider AS live_provider, coalesce(daticulocale, '') AS live_locale FROM pg_database WHERE datname = :'live' \gset
\else
SELECT 'c' AS live_provider, '' AS live_locale \gset
\endif
SELECT pg_encoding_to_char(d.encoding) AS live_encoding, d.datcollate AS live_collate, d.datctype AS live_ctype,
       t.spcname AS live_tablespace, t.spcname = 'pg_default' AS live_default_tablespace,
       :'live_provider' = 'i' AS live_icu, :'live_provider' = 'b' AS live_builtin
  FROM pg_database d JOIN pg_tablespace t ON t.oid = d.dattablespace WHERE d.datname = :'live' \gset
"""


def _create_like_live(target: str, extra: str = "") -> str:
    """CREATE DATABASE :target with the live database's encoding, locale (provider) and tablespace
    (named only when it is not pg_default: naming one needs CREATE on it, even pg_default)."""

    def variant(tablespace: str) -> str:
        base = (f'CREATE DATABASE :"{target}" OWNER :"owner" TEMPLATE template0{extra}\n'
                "  ENCODING :'live_encoding' LC_COLLATE :'live_collate' LC_CTYPE :'live_ctype'" + tablespace)
        return (
            "\\if :live_icu\n" + base + "\n  LOCALE_PROVIDER icu ICU_LOCALE :'live_locale';\n"
            + "\\elif :live_builtin\n" + base + "\n  LOCALE_PROVIDER builtin BUILTIN_LOCALE :'live_locale';\n"
            + "\\elif :v15\n" + base + "\n  LOCALE_PROVIDER libc;\n"
            + "\\else\n" + base + ";\n"
            + "\\endif\n"
        )

    return ("\\if :live_default_tablespace\n" + variant("") + "\\else\n" + variant(' TABLESPACE :"live_tablespace"')
            + "\\endif\n")


# how CREATE_TEMP and RECREATE_IN_PLACE begin: a leftover temporary database goes, and when
# the live database exists its encoding and locale are read (the \if branch stays open)
_FRESH_TMP_IF_LIVE = "\n" + _drop("tmp") + _exists("live") + "\\if :live_exists\n" + _READ_LIVE_LOCALE

CREATE_TEMP = (
    _FRESH_TMP_IF_LIVE
    + _create_like_live("tmp")
    + r"""\else
CREATE DATABASE :"tmp" OWNER :"owner" TEMPLATE template0;
\endif
"""
)

DROP_TEMP = "\n" + _drop("tmp")

# Before anything changes: the rights the import (or rollback) needs, checked as the admin
# role that will use them. A superuser has them all; any other role gets one line naming
# what to grant, and nothing has been touched.
CHECK_RIGHTS = r"""
SELECT set_config('kompose.live', :'live', false) AS checking \gset
DO $rights$
DECLARE
  me pg_roles%ROWTYPE;
  live pg_database%ROWTYPE;
  missing text[] := '{}';
BEGIN
  SELECT * INTO me FROM pg_roles WHERE rolname = current_user;
  IF me.rolsuper THEN
    RETURN;
  END IF;
  SELECT * INTO live FROM pg_database WHERE datname = current_setting('kompose.live');
  IF NOT me.rolcreatedb THEN
    missing := missing || format('ALTER ROLE %I CREATEDB', me.rolname);
  END IF;
  IF live.oid IS NOT NULL AND NOT pg_has_role(me.oid, live.datdba, 'USAGE') THEN
    missing := missing || format('GRANT %I TO %I', pg_get_userbyid(live.datdba), me.rolname);
  END IF;
  IF NOT pg_has_role(me.oid, 'pg_signal_backend', 'USAGE') THEN
    missing := missing || format('GRANT pg_signal_backend TO %I (to end the app''s sessions at the swap)', me.rolname);
  END IF;
  IF live.oid IS NOT NULL AND EXISTS (
      SELECT 1 FROM pg_db_role_setting s
        LEFT JOIN pg_roles r ON r.oid = s.setrole
        CROSS JOIN LATERAL unnest(s.setconfig) AS cfg
        LEFT JOIN pg_settings p ON p.name = split_part(cfg, '=', 1)
       WHERE s.setdatabase = live.oid
         AND ((s.setrole <> 0 AND s.setrole <> me.oid AND (r.rolsuper OR NOT me.rolcreaterole))
              OR p.context = 'superuser' OR p.name IS NULL)) THEN
    missing := missing || format('superuser (ALTER ROLE %I SUPERUSER) to carry settings of %I only a superuser may set',
                                 me.rolname, live.datname);
  END IF;
  IF cardinality(missing) > 0 THEN
    RAISE EXCEPTION 'kompose''s admin role % lacks rights it needs; nothing was changed. Grant: %; or set DB_ADMIN_USER and DB_ADMIN_PASSWORD to a superuser',
      me.rolname, array_to_string(missing, '; ');
  END IF;
END
$rights$;
"""

# The database object's own properties, which a rename swap would leave on the old database:
# owner, connection limit, the whole ACL (revokes included: a database closed to PUBLIC stays
# closed), comment, ALTER DATABASE ... SET and ALTER ROLE ... IN DATABASE ... SET. Copied
# onto the restored one before it goes live. Every statement must succeed (CHECK_RIGHTS ran
# first): a property kompose cannot carry stops the import before the swap.
def _copy_properties(source: str = "live", target: str = "tmp") -> str:
    """The script copying the properties of database :source onto database :target (psql variables)."""
    return (
        f"SELECT set_config('kompose.live', :'{source}', false), set_config('kompose.tmp', :'{target}', false) \\gset\n"
        + _COPY_PROPERTIES_BODY
    )


_COPY_PROPERTIES_BODY = r"""DO $copy$
DECLARE
  live_name text := current_setting('kompose.live');
  tmp_name text := current_setting('kompose.tmp');
  live pg_database%ROWTYPE;
  tmp pg_database%ROWTYPE;
  owner_name text;
  statements text[] := '{}';
  item record;
  statement text;
BEGIN
  SELECT * INTO live FROM pg_database WHERE datname = live_name;
  SELECT * INTO tmp FROM pg_database WHERE datname = tmp_name;
  owner_name := pg_get_userbyid(live.datdba);
  -- the owner first: the ACL below names it as the grantor, as on the live database
  IF live.datdba <> tmp.datdba THEN
    statements := statements || format('ALTER DATABASE %I OWNER TO %I', tmp_name, owner_name);
  END IF;
  IF live.datconnlimit <> tmp.datconnlimit THEN
    statements := statements || format('ALTER DATABASE %I CONNECTION LIMIT %s', tmp_name, live.datconnlimit);
  END IF;
  -- NULL is the default ACL (a fresh database has it); any other is rebuilt exactly: all
  -- rights off, the owner's own included, then each entry granted in its order
  IF live.datacl IS NOT NULL THEN
    statements := statements || format('REVOKE ALL ON DATABASE %I FROM PUBLIC', tmp_name)
                             || format('REVOKE ALL ON DATABASE %I FROM %I', tmp_name, owner_name);
    FOR item IN
      SELECT a.grantee, a.privilege_type, a.is_grantable
        FROM unnest(live.datacl) WITH ORDINALITY AS entry(acl, n)
        CROSS JOIN LATERAL aclexplode(ARRAY[entry.acl]) AS a
       ORDER BY entry.n
    LOOP
      statements := statements || format('GRANT %s ON DATABASE %I TO %s%s', item.privilege_type, tmp_name,
        CASE WHEN item.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(item.grantee)) END,
        CASE WHEN item.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
  END IF;
  IF shobj_description(live.oid, 'pg_database') IS NOT NULL THEN
    statements := statements || format('COMMENT ON DATABASE %I IS %L', tmp_name, shobj_description(live.oid, 'pg_database'));
  END IF;
  FOR item IN
    SELECT s.setrole, r.rolname, split_part(cfg, '=', 1) AS name, substr(cfg, strpos(cfg, '=') + 1) AS value
      FROM pg_db_role_setting s CROSS JOIN LATERAL unnest(s.setconfig) WITH ORDINALITY AS c(cfg, n)
      LEFT JOIN pg_roles r ON r.oid = s.setrole
     WHERE s.setdatabase = live.oid
     ORDER BY s.setrole, c.n
  LOOP
    -- list settings (search_path, ...) are stored by the server as an SQL list with each
    -- element already quoted: reuse that text; every other value is one literal
    item.value := CASE WHEN item.name IN ('search_path', 'temp_tablespaces', 'local_preload_libraries',
                                          'session_preload_libraries')
                       THEN item.value ELSE quote_literal(item.value) END;
    statements := statements || CASE WHEN item.setrole = 0
      THEN format('ALTER DATABASE %I SET %I = %s', tmp_name, item.name, item.value)
      ELSE format('ALTER ROLE %I IN DATABASE %I SET %I = %s', item.rolname, tmp_name, item.name, item.value) END;
  END LOOP;
  FOREACH statement IN ARRAY statements LOOP
    BEGIN
      EXECUTE statement;
    EXCEPTION WHEN insufficient_privilege THEN
      RAISE EXCEPTION 'not allowed to carry % over to the restored database (%); nothing was swapped: run as a superuser (DB_ADMIN_USER)',
        statement, SQLERRM;
    END;
  END LOOP;
END
$copy$;
"""
_COPY_PROPERTIES = _copy_properties()


# Closing a database and swapping names, in one transaction after the close: the close
# (ALTER DATABASE ... ALLOW_CONNECTIONS false) is committed on its own so that no new
# session gets in; then one DO block ends every client session of :sessions_of at once,
# polls until they are gone (pg_stat_clear_snapshot between reads: inside a transaction
# pg_stat_activity is otherwise a snapshot that never sees them leave), and renames. Autovacuum
# workers are not ended by kompose: ALTER DATABASE ... RENAME tells them to quit itself.
# When anything in the block fails, nothing was renamed and the live database is reopened.
def _close_and_rename(renames: str) -> str:
    return (
        r"""
ALTER DATABASE :"live" ALLOW_CONNECTIONS false;
SELECT set_config('kompose.live', :'live', false), set_config('kompose.tmp', :'tmp', false),
       set_config('kompose.prev', :'prev', false), set_config('kompose.old', :'old', false) \gset
\set ON_ERROR_STOP 0
DO $swap$
DECLARE
  closing text[] := ARRAY[current_setting('kompose.live'), current_setting('kompose.prev')];
BEGIN
  PERFORM pg_terminate_backend(pid) FROM pg_stat_activity
    WHERE datname = ANY (closing) AND pid <> pg_backend_pid() AND backend_type = 'client backend';
  FOR attempt IN 1..1000 LOOP
    PERFORM pg_stat_clear_snapshot();
    EXIT WHEN NOT EXISTS (SELECT 1 FROM pg_stat_activity
      WHERE datname = ANY (closing) AND pid <> pg_backend_pid() AND backend_type = 'client backend');
    PERFORM pg_sleep(0.01);
  END LOOP;
"""
        + renames
        + r"""END
$swap$;
\if :ERROR
\set ON_ERROR_STOP 1
ALTER DATABASE :"live" ALLOW_CONNECTIONS true;
DO $fail$ BEGIN RAISE EXCEPTION 'the swap failed; the live database is unchanged'; END $fail$;
\endif
\set ON_ERROR_STOP 1
"""
    )


def _rename(source: str, target: str) -> str:
    return (f"  EXECUTE format('ALTER DATABASE %I RENAME TO %I', current_setting('kompose.{source}'), "
            f"current_setting('kompose.{target}'));\n")


# The import's swap: the restored copy goes live, the live one becomes the previous copy, and
# the previous copy of the last import (renamed :old in the same transaction) is dropped only
# once the new database is live: a failed swap never costs the rollback copy.
SWAP = (
    "\n"
    + _exists("live")
    + r"""\if :live_exists
"""
    + _COPY_PROPERTIES
    + _drop("old")
    + _close_and_rename(
        "  IF EXISTS (SELECT 1 FROM pg_database WHERE datname = current_setting('kompose.prev')) THEN\n"
        + "  " + _rename("prev", "old")
        + "  END IF;\n"
        + _rename("live", "prev")
        + _rename("tmp", "live")
    )
    + r"""ALTER DATABASE :"prev" ALLOW_CONNECTIONS true;
"""
    + _exists("old")
    # the new database is live: failing to drop the old copy now must not fail the import
    + r"""\if :old_exists
\set ON_ERROR_STOP 0
"""
    + _drop("old")
    + r"""\if :ERROR
SELECT format('warning: could not drop %s (the copy before the previous one) yet; the next db command on this stack drops it', :'old');
\endif
\set ON_ERROR_STOP 1
\endif
\else
ALTER DATABASE :"tmp" RENAME TO :"live";
\endif
"""
)

ROLLBACK = (
    "\n"
    + _exists("prev")
    + r"""\if :prev_exists
\else
SELECT set_config('kompose.prev', :'prev', false) \gset
DO $none$ BEGIN
  RAISE EXCEPTION 'no previous database % to roll back to (db:import keeps one)', current_setting('kompose.prev');
END $none$;
\endif
"""
    + _drop("tmp")
    + _exists("live")
    + r"""\if :live_exists
"""
    + _close_and_rename(_rename("live", "tmp") + _rename("prev", "live") + _rename("tmp", "prev"))
    + r"""ALTER DATABASE :"live" ALLOW_CONNECTIONS true;
ALTER DATABASE :"prev" ALLOW_CONNECTIONS true;
\else
-- the live database is gone (dropped by hand, or by a failed --in-place import): the
-- previous one simply becomes live again, and there is no previous one afterwards
ALTER DATABASE :"prev" RENAME TO :"live";
ALTER DATABASE :"live" ALLOW_CONNECTIONS true;
SELECT 'no live database ' || :'live' || ': ' || :'prev' || ' is live again (no previous copy is left)' AS note;
\endif
"""
)

# --in-place: the live database is dropped and created again, empty, with its encoding and
# locale. Its owner, connection limit, ACL, comment and settings wait on an empty holder
# database (the temporary name; never connected to) and go back onto it after the restore
# (IN_PLACE_PROPERTIES), so a setting such as default_transaction_read_only cannot get in
# the restore's way.
RECREATE_IN_PLACE = (
    _FRESH_TMP_IF_LIVE
    + _create_like_live("tmp", " ALLOW_CONNECTIONS false")
    + _COPY_PROPERTIES
    + _drop("live")
    + _create_like_live("live")
    + r"""\else
CREATE DATABASE :"live" OWNER :"owner" TEMPLATE template0;
\endif
"""
)

# After an --in-place restore (or its failure): the properties held by the holder database
# go back onto the live one, and the holder is dropped. Nothing to do without a holder.
def _put_back(said: str = "") -> str:
    """The script; ``said``: a statement printing what it did, run only when there was a holder."""
    return (
        r"""
SELECT count(*) > 0 AS holder_exists FROM pg_database WHERE datname = :'tmp' AND NOT datallowconn
   AND EXISTS (SELECT 1 FROM pg_database WHERE datname = :'live') \gset
\if :holder_exists
"""
        + _copy_properties("tmp", "live")
        + _drop("tmp")
        + said
        + r"""
\endif
"""
    )


IN_PLACE_PROPERTIES = _put_back()

# Reopen the live database when a swap left it closed: the first thing every clean-up does
# (before anything that could fail, such as a drop), and db:rollback's clean-up.
REOPEN = (
    r"""
SELECT count(*) > 0 AS live_closed FROM pg_database WHERE datname = :'live' AND NOT datallowconn \gset
\if :live_closed
ALTER DATABASE :"live" ALLOW_CONNECTIONS true;
SELECT format('re-opened %s for connections (an interrupted swap had closed it)', :'live');
\endif
"""
)

# A killed import may leave a half-restored temporary database, and the live database
# refusing connections (the container stopped between closing it and the swap). Each
# repair prints one row saying what it did: run.py shows psql's rows, so the user sees
# exactly what was cleaned, and nothing when there was nothing to clean.
def _cleanup(dropped: str) -> str:
    return (
        REOPEN
        + r"""SELECT count(*) > 0 AS prev_closed FROM pg_database WHERE datname = :'prev' AND NOT datallowconn \gset
\if :prev_closed
ALTER DATABASE :"prev" ALLOW_CONNECTIONS true;
\endif
"""
        + _put_back(r"SELECT format('put back the settings, comment, grants and owner of %s (an interrupted --in-place "
                    r"import held them in %s)', :'live', :'tmp');")
        + _exists("tmp")
        + r"""\if :tmp_exists
"""
        + _drop("tmp")
        + r"""SELECT format('"""
        + dropped
        + r"""', :'tmp');
\endif
"""
        + _exists("old")
        + r"""\if :old_exists
"""
        + _drop("old")
        + r"""SELECT format('dropped %s (the copy before the previous one; an interrupted swap left it)', :'old');
\endif
"""
    )


# run first by every operation on the stack's database: the next run cleans up after a crash
RECOVER = _cleanup("dropped the leftover temporary database %s (left by an interrupted import)")
# run after a failed import
ABANDON = _cleanup("dropped the temporary database %s")

# Planner statistics for every table, partitioned parents and materialized views included
# (autovacuum never analyses those): run in the restored copy before it goes live.
ANALYZE = r"""
SET client_min_messages = warning;
ANALYZE;
"""


# Before pg_dump: row-level security that applies to DB_USER would make pg_dump (which runs with
# row_security off) fail on the table, or, asked to, leave rows out. Refused up front, naming the
# tables and the remedy. Runs in the live database as DB_USER.
RLS_CHECK = r"""
DO $rls$
DECLARE
  tables text;
BEGIN
  IF (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user) THEN
    RETURN;
  END IF;
  SELECT string_agg(format('%I.%I', n.nspname, c.relname), ', ' ORDER BY n.nspname, c.relname) INTO tables
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relrowsecurity AND c.relkind IN ('r', 'p')
     AND (c.relforcerowsecurity OR NOT pg_has_role(current_user, c.relowner, 'USAGE'));
  IF tables IS NOT NULL THEN
    RAISE EXCEPTION 'row-level security applies to DB_USER % on %: a dump would lack the rows its policies hide, '
      'so kompose does not export; give DB_USER BYPASSRLS (as a superuser: ALTER ROLE % BYPASSRLS), use a '
      'superuser DB_USER, or ALTER TABLE … NO FORCE ROW LEVEL SECURITY', current_user, tables, quote_ident(current_user);
  END IF;
END
$rls$;
"""


# One exact count per ordinary or partitioned table (partitions are counted in their parent):
# the generated statements run through \gexec, each printing "schema.table<TAB>count".
ROW_COUNTS = r"""
SELECT format('SELECT %L, count(*) FROM %I.%I', n.nspname || '.' || c.relname, n.nspname, c.relname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
   AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\_%'
 ORDER BY 1 \gexec
"""


def drill_name(database: str) -> str:
    return database + DRILL_SUFFIX


def drill_variables(conn: Connection) -> tuple[tuple[str, str], ...]:
    """The variables of CREATE_TEMP / DROP_TEMP aimed at the drill database instead of the temporary one."""
    return (("live", conn.database), ("tmp", drill_name(conn.database)), ("owner", conn.user))


def variables(conn: Connection) -> tuple[tuple[str, str], ...]:
    db = conn.database
    return (("live", db), ("tmp", temp_name(db)), ("prev", prev_name(db)), ("old", old_name(db)), ("owner", conn.user))
