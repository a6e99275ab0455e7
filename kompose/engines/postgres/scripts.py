"""The SQL of the safe import as psql scripts: create the temporary database like the live one,
check the rights, swap, roll back, reopen, recover after a kill, ANALYZE, and the checks of an
export and a drill.

Values never reach SQL by pasting: scripts use psql variables (:"ident", :'literal'),
and DO blocks read them back with current_setting() and quote with format('%I').
"""

from __future__ import annotations

import shlex

from kompose.engines.postgres.properties import _COPY_PROPERTIES, CHECK_RIGHTS, _copy_properties  # noqa: F401



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
# the previous copy of the last import is renamed :old in the same transaction. :old is dropped
# only once the new database is live (a failed swap never costs the rollback copy), and not by
# this script: DROP DATABASE forces a checkpoint, which writes out the whole freshly restored
# database, so the import leaves it to a psql of its own in the container (DROP_OLD_STATEMENTS,
# a detached exec) and is done once the new database is live. A drop that does not finish
# (the container stopped, a session on :old) leaves :old to the next command's RECOVER.
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
\else
ALTER DATABASE :"tmp" RENAME TO :"live";
\endif
"""
)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def drop_old_statements(old: str) -> tuple[str, ...]:
    """After the swap, the copy before the previous one (:old) goes: one psql ``--command`` each
    (a detached exec has no stdin for a script, and ``--command`` knows no psql variables, so the
    name is quoted here, as psql quotes :"old" and :'old'). The client sessions on it are ended
    first; DROP DATABASE then ends autovacuum workers itself (see _drop)."""
    return (
        "SET client_min_messages = warning",
        "DO $end$ DECLARE session record; BEGIN FOR session IN SELECT pid FROM pg_stat_activity WHERE datname = "
        + _literal(old) + " AND pid <> pg_backend_pid() AND backend_type = 'client backend' LOOP "
        "BEGIN PERFORM pg_terminate_backend(session.pid); EXCEPTION WHEN insufficient_privilege THEN NULL; END; "
        "END LOOP; END $end$",
        "DROP DATABASE IF EXISTS " + _ident(old),
    )

def detach_from_script(argv: tuple[str, ...]) -> str:
    """The last lines of a psql script (the swap's): start ``argv`` through psql's shell escape,
    detached (stdin, stdout and stderr on /dev/null, so the exec ends with psql, and the program runs
    on in the container: the swap's session starts the drop of :old, one exec less than a detached
    exec of its own). ``\\!`` takes the rest of its line verbatim (no psql variables): each word is
    quoted for sh. Whatever the shell says, the script does not fail on it: ON_ERROR_STOP is off
    for it, the swap before it has committed, and a drop that never ran is RECOVER's."""
    return ("\\set ON_ERROR_STOP 0\n"
            "\\! " + " ".join(shlex.quote(word) for word in argv) + " </dev/null >/dev/null 2>&1 &\n")


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
        + r"""SELECT format('dropped %s (the copy before the previous one; the last import''s drop of it did not finish)', :'old');
\endif
"""
    )


# run first by every operation on the stack's database: the next run cleans up after a crash
RECOVER = _cleanup("dropped the leftover temporary database %s (left by an interrupted import)")
# run after a failed import
ABANDON = _cleanup("dropped the temporary database %s")

# Planner statistics for every table, partitioned parents and materialized views included
# (autovacuum never analyses those): run in the restored copy before it goes live. One ANALYZE
# of the restored relations, in one transaction: a database-wide ANALYZE commits once per
# relation (a WAL flush each) and goes through every system catalog too, which took 4-7 times
# as long on the bench's databases; the catalogs are left to autovacuum, as in any database.
# Foreign tables are left out, as a database-wide ANALYZE leaves them (they would ask their server).
ANALYZE = r"""
SET client_min_messages = warning;
BEGIN;
SELECT 'ANALYZE ' || string_agg(format('%I.%I', n.nspname, c.relname), ', ' ORDER BY n.nspname, c.relname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p', 'm') AND c.relpersistence <> 't'
   AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%'
HAVING count(*) > 0 \gexec
COMMIT;
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

# Beside the check, in the same session: one line when an interrupted import left something for
# RECOVER to repair (a temporary database, the copy before the previous one, a database a swap
# left closed), so an export runs RECOVER's exec only then (run/export_checks.py).
LEFTOVERS_LINE = "kompose:leftovers"
LEFTOVERS = f"""
SELECT '{LEFTOVERS_LINE}' WHERE EXISTS (SELECT 1 FROM pg_database WHERE datname IN (:'tmp', :'old')
   OR (datname IN (:'live', :'prev') AND NOT datallowconn));
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
