"""The shell scripts of the MariaDB and MySQL safe import, run inside the database container.

The tools are the server's own (``mariadb-dump`` / ``mariadb``, or ``mysqldump`` / ``mysql``),
run inside the database container; the password travels in the exec environment
(``MYSQL_PWD``), never in argv. MariaDB has no database rename, so an import restores into
``<db>__kompose_tmp`` and swaps table by table with ONE ``RENAME TABLE`` statement (atomic
across schemas): ``live.t TO prev.t, …, tmp.t TO live.t, …``. Triggers cannot move across
schemas with their table, so the triggers, routines, events and views of both databases
are captured first (by the server's own dump tool, which keeps definers, sql_mode and
character sets) and re-created after the rename: the new ones in the live database, the
old ones in ``<db>__kompose_prev``, which db:rollback swaps back the same way. The copy the
previous import kept leaves ``<db>__kompose_prev`` in that same RENAME TABLE statement (its
tables first, into a fresh ``<db>__kompose_old``, dropped after): a rename that fails or never
runs leaves the rollback copy as it was, and there is always exactly one.

The swap runs as one ``sh`` script inside the container (see :func:`swap_argv`). MySQL has
no anonymous compound statement (``BEGIN NOT ATOMIC``, ``EXECUTE IMMEDIATE``): every statement
that depends on what a database holds (the drops, the RENAME TABLE, a drill's counts) is
generated first by a query of ``information_schema`` (:func:`_gen`), then run in one session
(:func:`_run`), so MariaDB and MySQL share the scripts. Names
reach SQL only through :func:`ident` / :func:`literal` and the shell only through
``shlex.quote``; :func:`check_name` refuses the names neither can carry.
"""

from __future__ import annotations

import shlex


from kompose.engines.mariadb.tools import Connection, LOCK_WAIT_SECONDS, MAX_PACKET, ident, literal, old_name, prev_name, \
    temp_name


#
# Each script runs as `sh -c SCRIPT kompose` inside the database container, with MYSQL_PWD in
# its environment. It prints one line per thing it did on stdout, and its errors on stderr.

def _prelude(conn: Connection) -> str:
    args = " ".join(shlex.quote(a) for a in conn.args())
    # MySQL with GTIDs on would add SET @@GLOBAL.GTID_PURGED to the captured objects (see dump_argv)
    dump_args = args + (" --set-gtid-purged=OFF" if conn.flavour == "mysql" else "")
    client = f"{conn.client_tool} {args} --batch --skip-column-names --default-character-set=utf8mb4 " \
             f"--max-allowed-packet={MAX_PACKET}"
    return f"""set -eu
umask 077
q() {{ {client} "$@"; }}
# kompose's own statements: a known sql_mode (backslash escapes on, no ANSI quotes)
sq() {{ q --init-command="SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'" "$@"; }}
objects() {{ {conn.dump_tool} {dump_args} --no-data --no-create-info --skip-comments --skip-add-locks \\
    --default-character-set=utf8mb4 "$@"; }}
views() {{ {conn.dump_tool} {dump_args} --no-data --skip-triggers --skip-comments --skip-add-locks \\
    --default-character-set=utf8mb4 "$@"; }}
say() {{ printf '%s\\n' "$*"; }}
fail() {{ printf '%s\\n' "$*" >&2; exit 1; }}
"""


def _exists(database: str) -> str:
    return f"SELECT count(*) FROM information_schema.schemata WHERE schema_name = {literal(database)}"


def _tables(database: str) -> str:
    """Base tables and sequences (what RENAME TABLE moves), one per line."""
    return (f"SELECT table_name FROM information_schema.tables WHERE table_schema = {literal(database)} "
            "AND table_type IN ('BASE TABLE', 'SEQUENCE') ORDER BY table_name")


def _drops(database: str, triggers: bool = True, programs: bool = True, views: bool = True) -> str:
    """Queries (one SELECT per kind: information_schema's columns differ in collation, so no UNION)
    whose rows are the statements dropping the triggers / routines and events / views of
    ``database``: MySQL has no anonymous compound statement, so kompose's scripts generate their
    statements client-side (:func:`_gen`) and run them in one session."""
    db = literal(database)
    qdb = literal(ident(database) + ".")

    def drop(kind: str, name: str, table: str, where: str) -> str:
        return (f"SELECT CONCAT('DROP ', {kind}, ' IF EXISTS ', {qdb}, '`', REPLACE({name}, '`', '``'), '`;') "
                f"FROM information_schema.{table} WHERE {where} = {db}")

    parts = []
    if triggers:
        parts.append(drop("'TRIGGER'", "trigger_name", "triggers", "trigger_schema"))
    if programs:
        parts.append(drop("routine_type", "routine_name", "routines", "routine_schema"))
        parts.append(drop("'EVENT'", "event_name", "events", "event_schema"))
    if views:
        parts.append(drop("'VIEW'", "table_name", "views", "table_schema"))
    return "; ".join(parts)


def _gen(query: str, into: str) -> str:
    """A shell line setting ``$into`` to the statements ``query`` generates (raw rows: no escaping),
    failing the script when the query fails."""
    return f"{into}=$(sq --raw -e {shlex.quote(query)})\n"


def _capture(database: str, tag: str) -> str:
    """Shell lines saving the triggers, the routines and events, and the views of ``database``
    into $d/<tag>.triggers.sql, .programs.sql, .views.sql (the dump tool's own definitions:
    definers, sql_mode and character sets kept)."""
    db = shlex.quote(database)
    names = shlex.quote(f"SELECT table_name FROM information_schema.views WHERE table_schema = {literal(database)}")
    return f"""objects --triggers -- {db} >"$d/{tag}.triggers.sql"
objects --skip-triggers --routines --events -- {db} >"$d/{tag}.programs.sql"
names=$(sq -e {names})
if [ -n "$names" ]; then
    old_ifs=$IFS; IFS='
'
    views -- {db} $names >"$d/{tag}.views.sql"
    IFS=$old_ifs
else
    : >"$d/{tag}.views.sql"
fi
"""


def _load(database: str, tag: str) -> str:
    db = shlex.quote(f"--database={database}")
    return "".join(f'q {db} <"$d/{tag}.{part}.sql"\n' for part in ("triggers", "programs", "views"))


def _charset_of(database: str) -> str:
    """SQL giving `` CHARACTER SET x COLLATE y`` of ``database`` ('' when it does not exist)."""
    return ("SELECT COALESCE((SELECT CONCAT(' CHARACTER SET ', default_character_set_name, ' COLLATE ', "
            f"default_collation_name) FROM information_schema.schemata WHERE schema_name = {literal(database)}), '')")


def _create_like(database: str, model: str) -> str:
    """A query whose one row creates ``database`` with the character set and collation of ``model``
    (when it exists)."""
    return f"SELECT CONCAT('CREATE DATABASE ', {literal(ident(database))}, ({_charset_of(model)}), ';')"


def _create_like_sh(database: str, model: str, drop_first: bool = True) -> str:
    """Shell lines (re)creating ``database`` like ``model``."""
    drop = f"DROP DATABASE IF EXISTS {ident(database)};" if drop_first else ""
    return (_gen(_create_like(database, model), "create")
            + f"printf '%s\\n%s\\n' {shlex.quote(drop)} \"$create\" | sq\n")


def _moves(target: str, source: str, keep: str, hold: str | None, discard: str | None = None) -> str:
    """A query whose one row is ONE RENAME TABLE statement (or empty: no tables): every table of
    ``target`` to ``hold`` (or ``keep``), every table of ``source`` to ``target``, and with ``hold``
    the first ones on from ``hold`` to ``keep`` (a rotation: ``source`` is ``keep``); with
    ``discard``, before them all, every table of ``keep`` to ``discard`` (an import: the copy
    the previous one kept goes in the same atomic statement)."""

    def move(order: int, schema: str, frm: str, to: str) -> str:
        return (f"SELECT {order} AS o, table_name AS n, CONCAT({literal(ident(frm))}, '.`', "
                f"REPLACE(table_name, '`', '``'), '` TO ', {literal(ident(to))}, '.`', REPLACE(table_name, '`', '``'), "
                f"'`') AS m FROM information_schema.tables WHERE table_schema = {literal(schema)} "
                "AND table_type IN ('BASE TABLE', 'SEQUENCE')")

    parts = [move(0, keep, keep, discard)] if discard else []
    parts += [move(1, target, target, hold or keep), move(2, source, source, target)]
    if hold:
        parts.append(move(3, target, hold, keep))
    return ("SET SESSION group_concat_max_len = 4294967295; "
            "SELECT COALESCE(CONCAT('RENAME TABLE ', GROUP_CONCAT(m ORDER BY o, n SEPARATOR ', '), ';'), '') "
            f"FROM ({' UNION ALL '.join(parts)}) AS moves")


def _blocking_views(source: str, target: str) -> str:
    """A query whose rows drop the views of ``target`` named like a table of ``source`` (they would
    block the rename)."""
    return (f"SELECT CONCAT('DROP VIEW ', {literal(ident(target) + '.')}, '`', REPLACE(v.table_name, '`', '``'), '`;') "
            "FROM information_schema.views v JOIN information_schema.tables t ON t.table_name = v.table_name "
            f"AND t.table_schema = {literal(source)} AND t.table_type IN ('BASE TABLE', 'SEQUENCE') "
            f"WHERE v.table_schema = {literal(target)}")


def _run(*variables: str, check: str = "") -> str:
    """A shell line running the statements in ``$variables`` (generated by :func:`_gen`) in one
    session of the client; ``check``: the shell words that follow (``|| ...``)."""
    fmt = "\\n".join("%s" for _ in variables)
    args = " ".join(f'"${v}"' for v in variables)
    return f"printf '{fmt}\\n' {args} | sq{' ' + check if check else ''}\n"


def _sh(conn: Connection, body: str) -> tuple[str, ...]:
    return ("sh", "-c", _prelude(conn) + body, "kompose")


def swap_script(conn: Connection, source: str, target: str, keep: str, hold: str | None = None,
                discard: str | None = None, lock_wait: int = LOCK_WAIT_SECONDS) -> str:
    """The shell script swapping ``source``'s tables and objects into ``target``, ``target``'s
    into ``keep``. Import: source tmp, keep prev, whose tables (the copy the previous import
    kept) go to ``discard`` (old, made afresh) in the same RENAME; source and discard dropped
    after. Rollback: source and keep are prev, ``hold`` (tmp) is passed through within the same
    RENAME. Pass one of ``hold`` and ``discard``.

    Every statement that depends on what the databases hold (the drops, the RENAME TABLE) is
    generated from information_schema by a query first and then run: no compound statement,
    so the same script serves MariaDB and MySQL. Nothing before the RENAME changes ``target``
    or ``keep`` but their triggers and blocking views, which a failed RENAME puts back."""
    if bool(hold) == bool(discard):
        raise ValueError("swap_script: pass one of hold and discard")
    room = hold or discard
    lock = f"SET SESSION lock_wait_timeout = {int(lock_wait)};"
    triggers = _drops(source, programs=False, views=False) + "; " + _drops(target, programs=False, views=False)
    blocking = _blocking_views(source, target)
    keep_sh = put_back_keep = ""
    if discard:
        triggers += "; " + _drops(keep, programs=False, views=False)
        blocking += "; " + _blocking_views(target, keep)
        keep_sh = f"""keep_exists=$(sq -e {shlex.quote(_exists(keep))})
if [ "$keep_exists" = 1 ]; then
{_capture(keep, "prev")}else
    : >"$d/prev.triggers.sql"; : >"$d/prev.programs.sql"; : >"$d/prev.views.sql"
{_create_like_sh(keep, target, drop_first=False)}fi
"""
        put_back_keep = f"""    q {shlex.quote("--database=" + keep)} --force <"$d/prev.triggers.sql" >/dev/null 2>&1 || true
    q {shlex.quote("--database=" + keep)} --force <"$d/prev.views.sql" >/dev/null 2>&1 || true
    [ "$keep_exists" = 1 ] || sq -e {shlex.quote(f"DROP DATABASE IF EXISTS {ident(keep)}")} >/dev/null 2>&1 || true
"""
    # the previous copy gets the live database's character set and collation, as its objects had
    alter = (_gen(f"SELECT CONCAT('ALTER DATABASE ', {literal(ident(keep))}, ({_charset_of(target)}), ';')", "alter")
             + _run("alter", check="|| objects_failed")) if discard else ""
    drops = "".join(f"sq -e {shlex.quote(f'DROP DATABASE {ident(name)}')}\n" for name in (discard, hold or source) if name)
    return f"""d=$(mktemp -d /tmp/kompose-swap.XXXXXX)
trap 'rm -rf "$d"' EXIT
[ "$(sq -e {shlex.quote(_exists(source))})" = 1 ] || fail {shlex.quote(f"no database {source} to swap in")}
target_exists=$(sq -e {shlex.quote(_exists(target))})
# 1. capture the objects of the databases: nothing has changed yet
{_capture(source, "new")}if [ "$target_exists" = 1 ]; then
{_capture(target, "old")}else
    : >"$d/old.triggers.sql"; : >"$d/old.programs.sql"; : >"$d/old.views.sql"
{_create_like_sh(target, source, drop_first=False)}fi
{keep_sh}# 2. room: {"the table rotation passes through " + room if hold else "the tables of " + keep + " go to " + room}, made afresh
{_create_like_sh(room, target)}# 3. one session: triggers cannot move across schemas with their table, so they go (they were
# captured), then ONE RENAME TABLE statement moves every table at once, atomically; a session
# holding a table (an open transaction) makes the rename wait: not forever
lock={shlex.quote(lock)}
{_gen(triggers, "triggers")}# a view named like a table that comes in would block the rename
{_gen(blocking, "blocking")}{_gen(_moves(target, source, keep, hold, discard), "rename")}if ! {_run("lock", "triggers", "blocking", "rename").strip()}
then
    # nothing was renamed: the triggers and views go back where they were
    q {shlex.quote("--database=" + target)} --force <"$d/old.triggers.sql" >/dev/null 2>&1 || true
    q {shlex.quote("--database=" + target)} --force <"$d/old.views.sql" >/dev/null 2>&1 || true
    q {shlex.quote("--database=" + source)} --force <"$d/new.triggers.sql" >/dev/null 2>&1 || true
{put_back_keep}    sq -e {shlex.quote(f"DROP DATABASE IF EXISTS {ident(room)}")} >/dev/null 2>&1 || true
    fail {shlex.quote(f"the swap failed; {target} is unchanged" + (f", and so is {keep}" if discard else ""))}
fi
# 4. the objects: the new ones into {target}, the old ones into {keep}
objects_failed() {{ fail {shlex.quote(f"the tables were swapped, but re-creating the triggers, routines, events "
                                      f"and views failed; db:rollback returns {target} to what it was")}; }}
{alter}objects=$(sq --raw -e {shlex.quote(_drops(target, triggers=False) + "; " + _drops(keep, triggers=False))}) || objects_failed
{_run("objects", check="|| objects_failed")}( set -e
{_load(target, "new")}{_load(keep, "old")}) || objects_failed
{drops}"""


# Import: the restored temporary database becomes live, the live one the previous copy.
def swap_argv(conn: Connection, lock_wait: int = LOCK_WAIT_SECONDS) -> tuple[str, ...]:
    db = conn.database
    return _sh(conn, swap_script(conn, temp_name(db), db, prev_name(db), discard=old_name(db), lock_wait=lock_wait) + f"say {shlex.quote(f'swapped: {db} -> {prev_name(db)}, {temp_name(db)} -> {db}')}\n")


def rollback_argv(conn: Connection, lock_wait: int = LOCK_WAIT_SECONDS) -> tuple[str, ...]:
    """The previous copy becomes live again, the live one the previous copy (a rotation of the
    tables through the temporary database, in one RENAME TABLE statement)."""
    db, prev, tmp = conn.database, prev_name(conn.database), temp_name(conn.database)
    check = (f"SELECT count(*) FROM information_schema.tables WHERE table_schema = {literal(prev)}")
    return _sh(conn, f"""[ "$(sq -e {shlex.quote(check)})" -gt 0 ] || fail {shlex.quote(f"no previous database {prev} to roll back to (db:import keeps one)")}
""" + swap_script(conn, prev, db, prev, hold=tmp, lock_wait=lock_wait) + f"say {shlex.quote(f'rolled back: {prev} <-> {db}')}\n")


def create_temp_argv(conn: Connection, database: str | None = None) -> tuple[str, ...]:
    """A fresh, empty ``database`` (default: the temporary one) with the live database's
    character set and collation."""
    tmp = database or temp_name(conn.database)
    return _sh(conn, _create_like_sh(tmp, conn.database))


def drop_argv(conn: Connection, database: str, said: str = "") -> tuple[str, ...]:
    body = f"""if [ "$(sq -e {shlex.quote(_exists(database))})" = 1 ]; then
    sq -e {shlex.quote(f"DROP DATABASE {ident(database)}")}
    {("say " + shlex.quote(said)) if said else ":"}
fi
"""
    return _sh(conn, body)


def _cleanup(conn: Connection, dropped: str, guess: bool = True) -> tuple[str, ...]:
    """Drop a leftover temporary database, saying what it was (``guess``): with tables, an import
    stopped before its swap (the live database is as it was); without, a swap stopped after its
    rename (the live database has the restored tables; its objects may be missing). And a leftover
    ``<db>__kompose_old``: only the swap's RENAME moves tables into it, the same statement that
    makes the live tables the previous copy, so whatever it holds is the copy before that one."""
    db, tmp, old = conn.database, temp_name(conn.database), old_name(conn.database)
    # base tables only: the restored views stay behind in tmp when the rename took its tables
    tables = (f"SELECT count(*) FROM information_schema.tables WHERE table_schema = {literal(tmp)} "
              "AND table_type IN ('BASE TABLE', 'SEQUENCE')")
    body = f"""if [ "$(sq -e {shlex.quote(_exists(tmp))})" = 1 ]; then
    n={"$(sq -e " + shlex.quote(tables) + ")" if guess else "1"}
    sq -e {shlex.quote(f"DROP DATABASE {ident(tmp)}")}
    if [ "$n" -gt 0 ]; then
        say {shlex.quote(dropped)}
    else
        say {shlex.quote(f"warning: dropped {tmp}, left by a swap that stopped after moving the tables: {db} has the "
                         f"restored tables, but may lack triggers, routines, events or views; check it, or db:rollback")}
    fi
fi
if [ "$(sq -e {shlex.quote(_exists(old))})" = 1 ]; then
    sq -e {shlex.quote(f"DROP DATABASE {ident(old)}")}
    say {shlex.quote(f"dropped {old} (the copy before the previous one, left by an interrupted swap; "
                     f"{prev_name(db)} is the rollback copy)")}
fi
"""
    return _sh(conn, body)


def recover_argv(conn: Connection) -> tuple[str, ...]:
    tmp = temp_name(conn.database)
    return _cleanup(conn, f"dropped the leftover temporary database {tmp} (left by an interrupted import)")


def abandon_argv(conn: Connection) -> tuple[str, ...]:
    """After a failed import, in the same run: what failed has said what it changed (a restore that
    failed before its first table leaves an empty temporary database, which is no half swap)."""
    return _cleanup(conn, f"dropped the temporary database {temp_name(conn.database)}", guess=False)


def empty_argv(conn: Connection) -> tuple[str, ...]:
    """db:import --in-place: drop every trigger, routine, event, view and table of the live database
    in one session (foreign key checks off); the database itself stays, with its character set,
    collation and the grants on it, so a user with rights on its tables alone can do this."""
    db = conn.database
    tables = (f"SELECT CONCAT('DROP ', IF(table_type = 'SEQUENCE', 'SEQUENCE', 'TABLE'), ' IF EXISTS ', "
              f"{literal(ident(db) + '.')}, '`', REPLACE(table_name, '`', '``'), '`;') FROM information_schema.tables "
              f"WHERE table_schema = {literal(db)} AND table_type IN ('BASE TABLE', 'SEQUENCE')")
    body = (_gen(_drops(db), "objects") + _gen(tables, "tables")
            + "fk='SET SESSION foreign_key_checks = 0;'\n" + _run("objects", "fk", "tables"))
    return _sh(conn, body + f"say {shlex.quote(f'emptied {db}: its tables, views, triggers, routines and events dropped')}\n")


def row_counts_argv(conn: Connection, database: str) -> tuple[str, ...]:
    """One exact count per base table of ``database``, ``table<TAB>count`` per line: the counting
    statements generated from information_schema, then run in one session."""
    query = (f"SELECT CONCAT('SELECT ', QUOTE(table_name), ', count(*) FROM ', {literal(ident(database) + '.')}, "
             "'`', REPLACE(table_name, '`', '``'), '`;') FROM information_schema.tables "
             f"WHERE table_schema = {literal(database)} AND table_type = 'BASE TABLE' ORDER BY table_name")
    return _sh(conn, _gen(query, "counts") + _run("counts"))
