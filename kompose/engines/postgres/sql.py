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
DRILL_SUFFIX = "__kompose_drill"
DUMP_COMPLETE_MARKER = b"-- PostgreSQL database dump complete"


@dataclass(frozen=True)
class Connection:
    database: str
    user: str
    password: str
    port: str
    host: str = "127.0.0.1"  # inside the container: TCP, so the password is really checked

    def exec_env(self) -> tuple[tuple[str, str], ...]:
        """Environment for the tool's exec: the password never goes into argv."""
        return (("PGPASSWORD", self.password),) if self.password else ()

    def args(self) -> list[str]:
        return [f"--host={self.host}", f"--port={self.port}", f"--username={self.user}", "--no-password"]


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
    return Connection(database, env.get("DB_USER", "") or "postgres", env.get("DB_PASSWORD", ""), port)


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
    argv = ["pg_dump", *conn.args(), dbname_arg(conn.database)]
    if fmt == "custom":
        argv.append("--format=custom")
    elif gzip_level:
        argv.append(f"--compress={gzip_level}")
    if no_sync:
        argv.append("--no-sync")
    if output:
        argv.append(f"--file={output}")
    return tuple(argv)


def restore_argv(conn: Connection, database: str, fmt: str) -> tuple[str, ...]:
    """Restore from stdin into ``database``: psql stops at the first error, pg_restore likewise."""
    if fmt == "custom":
        return ("pg_restore", *conn.args(), "--exit-on-error", "--no-owner", f"--role={conn.user}",
                dbname_arg(database))
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
    return f"{tool} failed (exit {exit_code}): {detail}"


# ------------------------------------------------------------------- SQL

# Connections to the maintenance database "postgres"; variables: live, tmp, prev, owner.


def _exists(variable: str) -> str:
    """Sets the psql variable ``<variable>_exists``: whether the database named by ``:variable`` exists."""
    return f"SELECT count(*) > 0 AS {variable}_exists FROM pg_database WHERE datname = :'{variable}' \\gset\n"


# the live database's encoding and locale, for a database that must match it
_READ_LIVE_LOCALE = r"""SELECT pg_encoding_to_char(encoding) AS live_encoding, datcollate AS live_collate, datctype AS live_ctype
  FROM pg_database WHERE datname = :'live' \gset
"""
_LIVE_LOCALE = "ENCODING :'live_encoding' LC_COLLATE :'live_collate' LC_CTYPE :'live_ctype'"

# how CREATE_TEMP and RECREATE_IN_PLACE begin: a leftover temporary database goes, and when
# the live database exists its encoding and locale are read (the \if branch stays open)
_FRESH_TMP_IF_LIVE = (
    r"""
DROP DATABASE IF EXISTS :"tmp" WITH (FORCE);
"""
    + _exists("live")
    + r"""\if :live_exists
"""
    + _READ_LIVE_LOCALE
)

CREATE_TEMP = (
    _FRESH_TMP_IF_LIVE
    + f"""CREATE DATABASE :"tmp" OWNER :"owner" TEMPLATE template0
  {_LIVE_LOCALE};
"""
    + r"""\else
CREATE DATABASE :"tmp" OWNER :"owner" TEMPLATE template0;
\endif
"""
)

DROP_TEMP = r"""
DROP DATABASE IF EXISTS :"tmp" WITH (FORCE);
"""

# Before an import's restore: the copy the last import kept goes, so the restore has its room
# (live + temporary at most, never three copies). Dropping it later, in the swap, would also
# make PostgreSQL's forced checkpoint write the whole freshly restored database at that moment.
DROP_PREV = (
    "\n"
    + _exists("prev")
    + r"""\if :prev_exists
DROP DATABASE :"prev" WITH (FORCE);
SELECT format('dropped %s (the copy the last import kept) to make room for the restore', :'prev');
\endif
"""
)

# Terminating sessions and renaming in one session: new connections are refused
# first (a rename fails while anyone is connected), then the renames run in one
# DO block, which is one transaction: both happen or neither does. If they fail,
# the live database gets its connections back before psql reports the error.
_CLOSE_LIVE = r"""
ALTER DATABASE :"live" ALLOW_CONNECTIONS false;
SELECT set_config('kompose.live', :'live', false) \gset
SELECT count(pg_terminate_backend(pid)) AS terminated FROM pg_stat_activity
  WHERE datname = :'live' AND pid <> pg_backend_pid() \gset
DO $wait$
BEGIN
  FOR attempt IN 1..200 LOOP
    EXIT WHEN NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_setting('kompose.live'));
    PERFORM pg_sleep(0.05);
  END LOOP;
END
$wait$;
"""

_REOPEN_ON_ERROR = r"""
\if :ERROR
\set ON_ERROR_STOP 1
ALTER DATABASE :"live" ALLOW_CONNECTIONS true;
DO $fail$ BEGIN RAISE EXCEPTION 'the swap failed; the live database is unchanged'; END $fail$;
\endif
\set ON_ERROR_STOP 1
"""

# Settings (ALTER DATABASE ... SET, also per role), the comment, the grants and the owner
# belong to the database object, not its contents: a rename swap would leave them on the
# old database. Copy them onto the restored one before it goes live.
def _copy_properties(source: str = "live", target: str = "tmp") -> str:
    """The script copying the properties of database :source onto database :target (psql variables)."""
    return (
        f"SELECT set_config('kompose.live', :'{source}', false), set_config('kompose.tmp', :'{target}', false),"
        + _COPY_PROPERTIES_BODY
    )


_COPY_PROPERTIES_BODY = r"""
       set_config('kompose.skipped', '', false) \gset
DO $copy$
DECLARE
  live_name text := current_setting('kompose.live');
  tmp_name text := current_setting('kompose.tmp');
  live pg_database%ROWTYPE;
  statements text[] := '{}';
  item record;
  statement text;
BEGIN
  SELECT * INTO live FROM pg_database WHERE datname = live_name;
  FOR item IN
    SELECT s.setrole, r.rolname, split_part(cfg, '=', 1) AS name, substr(cfg, strpos(cfg, '=') + 1) AS value
      FROM pg_db_role_setting s CROSS JOIN LATERAL unnest(s.setconfig) AS cfg
      LEFT JOIN pg_roles r ON r.oid = s.setrole
     WHERE s.setdatabase = live.oid
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
  IF shobj_description(live.oid, 'pg_database') IS NOT NULL THEN
    statements := statements || format('COMMENT ON DATABASE %I IS %L', tmp_name, shobj_description(live.oid, 'pg_database'));
  END IF;
  FOR item IN
    SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END AS grantee,
           a.privilege_type, a.is_grantable
      FROM aclexplode(live.datacl) AS a
  LOOP
    statements := statements || format('GRANT %s ON DATABASE %I TO %s%s', item.privilege_type, tmp_name, item.grantee,
                                       CASE WHEN item.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
  END LOOP;
  IF live.datdba <> (SELECT datdba FROM pg_database WHERE datname = tmp_name) THEN
    statements := statements || format('ALTER DATABASE %I OWNER TO %I', tmp_name, pg_get_userbyid(live.datdba));
  END IF;
  FOREACH statement IN ARRAY statements LOOP
    BEGIN
      EXECUTE statement;
    EXCEPTION WHEN insufficient_privilege THEN
      -- an app role may not change other roles' settings: copy what it may, and say what not
      PERFORM set_config('kompose.skipped', current_setting('kompose.skipped') || '; ' || statement, false);
    END;
  END LOOP;
END
$copy$;
SELECT 'warning: not allowed to carry over to the restored database (run as a superuser to keep them): '
       || substr(current_setting('kompose.skipped'), 3)
 WHERE current_setting('kompose.skipped') <> '';
"""
_COPY_PROPERTIES = _copy_properties()

SWAP = (
    "\n"
    + _exists("live")
    + r"""\if :live_exists
"""
    + _COPY_PROPERTIES
    + r"""
DROP DATABASE IF EXISTS :"prev" WITH (FORCE);
"""
    + _CLOSE_LIVE
    + r"""
SELECT set_config('kompose.tmp', :'tmp', false), set_config('kompose.prev', :'prev', false) \gset
\set ON_ERROR_STOP 0
DO $swap$
BEGIN
  EXECUTE format('ALTER DATABASE %I RENAME TO %I', current_setting('kompose.live'), current_setting('kompose.prev'));
  EXECUTE format('ALTER DATABASE %I RENAME TO %I', current_setting('kompose.tmp'), current_setting('kompose.live'));
END
$swap$;
"""
    + _REOPEN_ON_ERROR
    + r"""
ALTER DATABASE :"prev" ALLOW_CONNECTIONS true;
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
DROP DATABASE IF EXISTS :"tmp" WITH (FORCE);
"""
    + _exists("live")
    + r"""\if :live_exists
"""
    + _CLOSE_LIVE
    + r"""
SELECT set_config('kompose.tmp', :'tmp', false), set_config('kompose.prev', :'prev', false) \gset
\set ON_ERROR_STOP 0
DO $swap$
BEGIN
  EXECUTE format('ALTER DATABASE %I RENAME TO %I', current_setting('kompose.live'), current_setting('kompose.tmp'));
  EXECUTE format('ALTER DATABASE %I RENAME TO %I', current_setting('kompose.prev'), current_setting('kompose.live'));
  EXECUTE format('ALTER DATABASE %I RENAME TO %I', current_setting('kompose.tmp'), current_setting('kompose.prev'));
END
$swap$;
"""
    + _REOPEN_ON_ERROR
    + r"""
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
# locale. Its settings, comment, grants and owner wait on an empty holder database (the
# temporary name; never connected to) and go back onto it after the restore
# (IN_PLACE_PROPERTIES), so a setting such as default_transaction_read_only cannot get in
# the restore's way.
RECREATE_IN_PLACE = (
    _FRESH_TMP_IF_LIVE
    + r"""CREATE DATABASE :"tmp" OWNER :"owner" TEMPLATE template0 ALLOW_CONNECTIONS false;
"""
    + _COPY_PROPERTIES
    + f"""
DROP DATABASE :"live" WITH (FORCE);
CREATE DATABASE :"live" OWNER :"owner" TEMPLATE template0
  {_LIVE_LOCALE};
"""
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
        + r"""
DROP DATABASE :"tmp" WITH (FORCE);
"""
        + said
        + r"""
\endif
"""
    )


IN_PLACE_PROPERTIES = _put_back()

# A killed import may leave a half-restored temporary database, and the live database
# refusing connections (the container stopped between closing it and the swap). Each
# repair prints one row saying what it did: run.py shows psql's rows, so the user sees
# exactly what was cleaned, and nothing when there was nothing to clean.
def _cleanup(dropped: str) -> str:
    return (
        _put_back(r"SELECT format('put back the settings, comment, grants and owner of %s (an interrupted --in-place "
                  r"import held them in %s)', :'live', :'tmp');")
        + _exists("tmp")
        + r"""\if :tmp_exists
DROP DATABASE IF EXISTS :"tmp" WITH (FORCE);
SELECT format('"""
        + dropped
        + r"""', :'tmp');
\endif
SELECT count(*) > 0 AS live_closed FROM pg_database WHERE datname = :'live' AND NOT datallowconn \gset
\if :live_closed
ALTER DATABASE :"live" ALLOW_CONNECTIONS true;
SELECT format('re-opened %s for connections (an interrupted swap had closed it)', :'live');
\endif
"""
    )


# run first by every operation on the stack's database: the next run cleans up after a crash
RECOVER = _cleanup("dropped the leftover temporary database %s (left by an interrupted import)")
# run after a failed import
ABANDON = _cleanup("dropped the temporary database %s")


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
    return (("live", db), ("tmp", temp_name(db)), ("prev", prev_name(db)), ("owner", conn.user))
