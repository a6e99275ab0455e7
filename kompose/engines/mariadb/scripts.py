"""The shell scripts of the MariaDB and MySQL safe import, run inside the database container.

The tools are the server's own (``mariadb-dump`` / ``mariadb``, or ``mysqldump`` / ``mysql``),
run inside the database container; the password travels in the exec environment
(``MYSQL_PWD``), never in argv. MariaDB has no database rename, so an import restores into
``<db>__kompose_tmp`` and swaps table by table with ONE ``RENAME TABLE`` statement (atomic
across schemas): ``live.t TO prev.t, …, tmp.t TO live.t, …``. Triggers cannot move across
schemas with their table, so the triggers, routines, events and views of both databases
are captured first (by the server's own dump tool, which keeps definers, sql_mode and
character sets) and re-created after the rename: the new ones in the live database, the
old ones in ``<db>__kompose_prev``, which db:rollback swaps back the same way.

The swap runs as one ``sh`` script inside the container (see :func:`swap_argv`). Names
reach SQL only through :func:`ident` / :func:`literal` and the shell only through
``shlex.quote``; :func:`check_name` refuses the names neither can carry.
"""

from __future__ import annotations

import shlex


from kompose.engines.mariadb.tools import Connection, LOCK_WAIT_SECONDS, MAX_PACKET, ident, literal, prev_name, temp_name


#
# Each script runs as `sh -c SCRIPT kompose` inside the database container, with MYSQL_PWD in
# its environment. It prints one line per thing it did on stdout, and its errors on stderr.

def _prelude(conn: Connection) -> str:
    args = " ".join(shlex.quote(a) for a in conn.args())
    client = f"{conn.client_tool} {args} --batch --skip-column-names --default-character-set=utf8mb4 " \
             f"--max-allowed-packet={MAX_PACKET}"
    return f"""set -eu
umask 077
q() {{ {client} "$@"; }}
# kompose's own statements: a known sql_mode (backslash escapes on, no ANSI quotes)
sq() {{ q --init-command="SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'" "$@"; }}
objects() {{ {conn.dump_tool} {args} --no-data --no-create-info --skip-comments --skip-add-locks \\
    --default-character-set=utf8mb4 "$@"; }}
views() {{ {conn.dump_tool} {args} --no-data --skip-triggers --skip-comments --skip-add-locks \\
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


def _drop_all(database: str, triggers: bool = True, programs: bool = True, views: bool = True) -> str:
    """A compound statement dropping the triggers / routines and events / views of ``database``."""
    parts = []
    db = literal(database)
    qdb = f"CONCAT('`', REPLACE({db}, '`', '``'), '`.`', REPLACE(v_name, '`', '``'), '`')"
    if triggers:
        parts.append(f"SELECT 'TRIGGER' AS k, trigger_name AS n FROM information_schema.triggers WHERE trigger_schema = {db}")
    if programs:
        parts.append(f"SELECT routine_type AS k, routine_name AS n FROM information_schema.routines WHERE routine_schema = {db}")
        parts.append(f"SELECT 'EVENT' AS k, event_name AS n FROM information_schema.events WHERE event_schema = {db}")
    if views:
        parts.append(f"SELECT 'VIEW' AS k, table_name AS n FROM information_schema.views WHERE table_schema = {db}")
    union = " UNION ALL ".join(parts)
    return f"""BEGIN NOT ATOMIC
  DECLARE done INT DEFAULT 0;
  DECLARE v_kind, v_name VARCHAR(64);
  DECLARE items CURSOR FOR SELECT k, n FROM ({union}) AS objects;
  DECLARE CONTINUE HANDLER FOR NOT FOUND SET done = 1;
  OPEN items;
  drop_loop: LOOP
    FETCH items INTO v_kind, v_name;
    IF done THEN LEAVE drop_loop; END IF;
    EXECUTE IMMEDIATE CONCAT('DROP ', v_kind, ' IF EXISTS ', {qdb});
  END LOOP;
  CLOSE items;
END"""


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
    """SQL creating ``database`` with the character set and collation of ``model`` (when it exists)."""
    return (f"SET @kompose_create = CONCAT('CREATE DATABASE ', {literal(ident(database))}, ({_charset_of(model)})); "
            "EXECUTE IMMEDIATE @kompose_create")


def _moves(target: str, source: str, keep: str, hold: str | None) -> str:
    """SQL setting @moves to the list of one RENAME TABLE statement: every table of ``target``
    to ``hold`` (or ``keep``), every table of ``source`` to ``target``, and with ``hold`` the
    first ones on from ``hold`` to ``keep`` (a rotation: ``source`` is ``keep``)."""

    def move(order: int, schema: str, frm: str, to: str) -> str:
        return (f"SELECT {order} AS o, table_name AS n, CONCAT({literal(ident(frm))}, '.`', "
                f"REPLACE(table_name, '`', '``'), '` TO ', {literal(ident(to))}, '.`', REPLACE(table_name, '`', '``'), "
                f"'`') AS m FROM information_schema.tables WHERE table_schema = {literal(schema)} "
                "AND table_type IN ('BASE TABLE', 'SEQUENCE')")

    parts = [move(1, target, target, hold or keep), move(2, source, source, target)]
    if hold:
        parts.append(move(3, target, hold, keep))
    return ("SET SESSION group_concat_max_len = 4294967295;;\n"
            f"SELECT GROUP_CONCAT(m ORDER BY o, n SEPARATOR ', ') INTO @moves FROM ({' UNION ALL '.join(parts)}) AS moves;;\n")


def _sql(*statements: str, check: str = "") -> str:
    """Shell lines running ``statements`` in one session of the client, each ended by ``;;``
    (compound statements hold ``;``); ``check``: the shell words that follow (``|| ...``)."""
    body = "".join(statement.strip().rstrip(";") + ";;\n" for statement in statements)
    return f"sq <<'KOMPOSE_SQL' {check}\nDELIMITER ;;\n{body}KOMPOSE_SQL\n"


def _sh(conn: Connection, body: str) -> tuple[str, ...]:
    return ("sh", "-c", _prelude(conn) + body, "kompose")


def swap_script(conn: Connection, source: str, target: str, keep: str, hold: str | None = None,
                lock_wait: int = LOCK_WAIT_SECONDS) -> str:
    """The shell script swapping ``source``'s tables and objects into ``target``, ``target``'s
    into ``keep``. Import: source tmp, keep prev (made afresh), source dropped after. Rollback:
    source and keep are prev, ``hold`` (tmp) is passed through within the same RENAME."""
    lit = literal
    return f"""d=$(mktemp -d /tmp/kompose-swap.XXXXXX)
trap 'rm -rf "$d"' EXIT
[ "$(sq -e {shlex.quote(_exists(source))})" = 1 ] || fail {shlex.quote(f"no database {source} to swap in")}
target_exists=$(sq -e {shlex.quote(_exists(target))})
# 1. capture the objects of both databases: nothing has changed yet
{_capture(source, "new")}if [ "$target_exists" = 1 ]; then
{_capture(target, "old")}else
    : >"$d/old.triggers.sql"; : >"$d/old.programs.sql"; : >"$d/old.views.sql"
{_sql(_create_like(target, source))}fi
# 2. room: {"the table rotation passes through " + hold if hold else keep + " is made afresh"}
{_sql(f"DROP DATABASE IF EXISTS {ident(hold or keep)}", _create_like(hold or keep, target))}# 3. one session: triggers cannot move across schemas with their table, so they go (they were
# captured), then ONE RENAME TABLE statement moves every table at once, atomically
if ! sq <<'KOMPOSE_SQL'
DELIMITER ;;
-- a session holding a table (an open transaction) makes the rename wait: not forever
SET SESSION lock_wait_timeout = {int(lock_wait)};;
{_drop_all(source, programs=False, views=False)};;
{_drop_all(target, programs=False, views=False)};;
-- a view of the live database named like a table that comes in would block the rename
BEGIN NOT ATOMIC
  DECLARE done INT DEFAULT 0;
  DECLARE v_name VARCHAR(64);
  DECLARE items CURSOR FOR SELECT v.table_name FROM information_schema.views v
    JOIN information_schema.tables t ON t.table_name = v.table_name AND t.table_schema = {lit(source)}
      AND t.table_type IN ('BASE TABLE', 'SEQUENCE')
    WHERE v.table_schema = {lit(target)};
  DECLARE CONTINUE HANDLER FOR NOT FOUND SET done = 1;
  OPEN items;
  drop_loop: LOOP
    FETCH items INTO v_name;
    IF done THEN LEAVE drop_loop; END IF;
    EXECUTE IMMEDIATE CONCAT('DROP VIEW ', {lit(ident(target))}, '.`', REPLACE(v_name, '`', '``'), '`');
  END LOOP;
  CLOSE items;
END;;
{_moves(target, source, keep, hold)}SET @moves = COALESCE(CONCAT('RENAME TABLE ', @moves), 'DO 0');;
EXECUTE IMMEDIATE @moves;;
KOMPOSE_SQL
then
    # nothing was renamed: the triggers go back where they were
    q {shlex.quote("--database=" + target)} --force <"$d/old.triggers.sql" >/dev/null 2>&1 || true
    q {shlex.quote("--database=" + target)} --force <"$d/old.views.sql" >/dev/null 2>&1 || true
    q {shlex.quote("--database=" + source)} --force <"$d/new.triggers.sql" >/dev/null 2>&1 || true
    {"" if hold else "sq -e " + shlex.quote(f"DROP DATABASE IF EXISTS {ident(keep)}") + " >/dev/null 2>&1 || true"}
    fail {shlex.quote(f"the swap failed; {target} is unchanged")}
fi
# 4. the objects: the new ones into {target}, the old ones into {keep}
objects_failed() {{ fail {shlex.quote(f"the tables were swapped, but re-creating the triggers, routines, events "
                                      f"and views failed; db:rollback returns {target} to what it was")}; }}
{_sql(_drop_all(target, triggers=False), _drop_all(keep, triggers=False), check="|| objects_failed")}( set -e
{_load(target, "new")}{_load(keep, "old")}) || objects_failed
{_sql(f"DROP DATABASE {ident(hold or source)}")}"""


# Import: the restored temporary database becomes live, the live one the previous copy.
def swap_argv(conn: Connection, lock_wait: int = LOCK_WAIT_SECONDS) -> tuple[str, ...]:
    db = conn.database
    return _sh(conn, swap_script(conn, temp_name(db), db, prev_name(db), lock_wait=lock_wait) + f"say {shlex.quote(f'swapped: {db} -> {prev_name(db)}, {temp_name(db)} -> {db}')}\n")


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
    return _sh(conn, _sql(f"DROP DATABASE IF EXISTS {ident(tmp)}", _create_like(tmp, conn.database)))


def drop_argv(conn: Connection, database: str, said: str = "") -> tuple[str, ...]:
    body = f"""if [ "$(sq -e {shlex.quote(_exists(database))})" = 1 ]; then
    sq -e {shlex.quote(f"DROP DATABASE {ident(database)}")}
    {("say " + shlex.quote(said)) if said else ":"}
fi
"""
    return _sh(conn, body)


def _cleanup(conn: Connection, dropped: str) -> tuple[str, ...]:
    """Drop a leftover temporary database, saying what it was: with tables, an import stopped
    before its swap (the live database is as it was); without, a swap stopped after its
    rename (the live database has the restored tables; its objects may be missing)."""
    db, tmp = conn.database, temp_name(conn.database)
    tables = f"SELECT count(*) FROM information_schema.tables WHERE table_schema = {literal(tmp)}"
    body = f"""if [ "$(sq -e {shlex.quote(_exists(tmp))})" = 1 ]; then
    n=$(sq -e {shlex.quote(tables)})
    sq -e {shlex.quote(f"DROP DATABASE {ident(tmp)}")}
    if [ "$n" -gt 0 ]; then
        say {shlex.quote(dropped)}
    else
        say {shlex.quote(f"warning: dropped {tmp}, left by a swap that stopped after moving the tables: {db} has the "
                         f"restored tables, but may lack triggers, routines, events or views; check it, or db:rollback")}
    fi
fi
"""
    return _sh(conn, body)


def recover_argv(conn: Connection) -> tuple[str, ...]:
    tmp = temp_name(conn.database)
    return _cleanup(conn, f"dropped the leftover temporary database {tmp} (left by an interrupted import)")


def abandon_argv(conn: Connection) -> tuple[str, ...]:
    return _cleanup(conn, f"dropped the temporary database {temp_name(conn.database)}")


def empty_argv(conn: Connection) -> tuple[str, ...]:
    """db:import --in-place: drop every trigger, routine, event, view and table of the live database
    in one session (foreign key checks off); the database itself stays, with its character set,
    collation and the grants on it, so a user with rights on its tables alone can do this."""
    db = conn.database
    tables = literal(db)
    body = _sql(_drop_all(db), f"""BEGIN NOT ATOMIC
  DECLARE done INT DEFAULT 0;
  DECLARE v_kind, v_name VARCHAR(64);
  DECLARE items CURSOR FOR SELECT IF(table_type = 'SEQUENCE', 'SEQUENCE', 'TABLE'), table_name
    FROM information_schema.tables WHERE table_schema = {tables} AND table_type IN ('BASE TABLE', 'SEQUENCE');
  DECLARE CONTINUE HANDLER FOR NOT FOUND SET done = 1;
  SET SESSION foreign_key_checks = 0;
  OPEN items;
  drop_loop: LOOP
    FETCH items INTO v_kind, v_name;
    IF done THEN LEAVE drop_loop; END IF;
    EXECUTE IMMEDIATE CONCAT('DROP ', v_kind, ' IF EXISTS ', {literal(ident(db))}, '.`', REPLACE(v_name, '`', '``'),
                             '`');
  END LOOP;
  CLOSE items;
END""")
    return _sh(conn, body + f"say {shlex.quote(f'emptied {db}: its tables, views, triggers, routines and events dropped')}\n")


# One exact count per base table, "table<TAB>count" per line (the client's input, not a shell script).
def row_counts_script(database: str) -> str:
    return f"""DELIMITER ;;
BEGIN NOT ATOMIC
  DECLARE done INT DEFAULT 0;
  DECLARE v_name VARCHAR(64);
  DECLARE items CURSOR FOR SELECT table_name FROM information_schema.tables
    WHERE table_schema = {literal(database)} AND table_type = 'BASE TABLE' ORDER BY table_name;
  DECLARE CONTINUE HANDLER FOR NOT FOUND SET done = 1;
  OPEN items;
  count_loop: LOOP
    FETCH items INTO v_name;
    IF done THEN LEAVE count_loop; END IF;
    EXECUTE IMMEDIATE CONCAT('SELECT ', QUOTE(v_name), ', count(*) FROM ', {literal(ident(database))}, '.`',
                             REPLACE(v_name, '`', '``'), '`');
  END LOOP;
  CLOSE items;
END;;
"""
