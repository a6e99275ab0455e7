"""MariaDB and MySQL stacks end to end on real servers: db:export, db:import, db:rollback,
db:verify, db:drill, db:list, dry runs. Every test runs twice: on MariaDB 10.11 (kompose/mariadb,
Debian bookworm's mariadb-server) and on MySQL 9.7 (kompose/mysql, Debian sid's mysql-server).

One server per engine (the session's ``mariadb_server`` / ``mysql_server``) serves the module; each
test gets its own database (``db``) loaded with tests/data/mariadb_press.sql, a compact WordPress-like
schema (utf8mb4 data, a generated column, foreign keys, views, a trigger, a function and a
procedure, an event, AUTO_INCREMENT counters, a latin1 table, BLOBs), and a stack reaching
it by DB_CONTAINER. Every run checks that the root password (the canary) was never printed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import KomposeRoot
from tests.helpers import MariaDB, Result, kompose_env, quote_mariadb_ident, wait_for

SCHEMA = (Path(__file__).resolve().parent.parent / "data" / "mariadb_press.sql").read_text()


def run(kroot: KomposeRoot, db: MariaDB, *args: str) -> Result:
    result = kroot.run(*args)
    assert db.root_password not in result.output, "the password was printed"
    return result


def ok(result: Result) -> Result:
    assert result.code == 0, str(result)
    return result


@pytest.fixture(params=["mariadb", "mysql"])
def db(request) -> MariaDB:
    """A fresh database on the session's MariaDB or MySQL server (the user has all privileges on it),
    dropped afterwards."""
    import secrets

    server: MariaDB = request.getfixturevalue(f"{request.param}_server")
    database = f"t_{secrets.token_hex(4)}"
    server.create_database(database)
    yield server.using(database)
    for name in (database, f"{database}__kompose_tmp", f"{database}__kompose_prev", f"{database}__kompose_old",
                 f"{database}__kompose_drill"):
        server.drop_database(name)


@pytest.fixture
def press(kroot: KomposeRoot, db: MariaDB):
    """(stack name, db): the press schema in a fresh database, and a stack for it (the image's
    root password variable of its engine; the engine detected from the container)."""
    db.script(SCHEMA)
    variable = "MYSQL_ROOT_PASSWORD" if db.engine == "mysql" else "MARIADB_ROOT_PASSWORD"
    env = (f"DB_NAME={db.database}\nDB_CONTAINER={db.container.name}\n"
           f'{variable}="{db.root_password.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"\n')
    name = kroot.stack("press", env=env)
    return name, db


def fingerprint(db: MariaDB, database: str | None = None) -> dict:
    """Everything a restore must keep, as comparable values."""
    database = database or db.database
    lit = f"'{database}'"
    return {
        "checksums": db.checksums(database),
        "tables": db.rows(f"SELECT table_name, table_collation, auto_increment FROM information_schema.tables "
                          f"WHERE table_schema = {lit} AND table_type = 'BASE TABLE' ORDER BY 1", database="mysql"),
        "columns": db.rows(f"SELECT table_name, column_name, column_type, character_set_name, collation_name, "
                           f"generation_expression FROM information_schema.columns WHERE table_schema = {lit} "
                           "ORDER BY 1, 2", database="mysql"),
        "fks": db.rows(f"SELECT constraint_name, table_name, referenced_table_name, delete_rule FROM "
                       f"information_schema.referential_constraints WHERE constraint_schema = {lit} ORDER BY 1",
                       database="mysql"),
        "views": db.rows(f"SELECT table_name, definer, security_type FROM information_schema.views "
                         f"WHERE table_schema = {lit} ORDER BY 1", database="mysql"),
        "triggers": db.rows(f"SELECT trigger_name, event_object_table, action_timing, definer FROM "
                            f"information_schema.triggers WHERE trigger_schema = {lit} ORDER BY 1", database="mysql"),
        "routines": db.rows(f"SELECT routine_name, routine_type, definer, routine_definition FROM "
                            f"information_schema.routines WHERE routine_schema = {lit} ORDER BY 1", database="mysql"),
        "events": db.rows(f"SELECT event_name, definer, event_definition, status, interval_value, event_comment "
                          f"FROM information_schema.events WHERE event_schema = {lit} ORDER BY 1", database="mysql"),
        "published": db.rows("SELECT * FROM wp_published ORDER BY 1", database=database),
        "utf8": db.rows("SELECT HEX(display_name) FROM wp_users ORDER BY ID", database=database),
    }


def damage(db: MariaDB) -> None:
    db.script("""
DELETE FROM wp_users WHERE ID = 2;
UPDATE wp_posts SET post_title = 'oops';
DROP TRIGGER wp_comments_count;
DROP VIEW wp_published_count;
DROP PROCEDURE publish_all;
CREATE TABLE wp_new_plugin (id int PRIMARY KEY);
INSERT INTO wp_users (user_login, user_email) VALUES ('late', 'late@example.org');
""")


def newest_dump(kroot: KomposeRoot, name: str) -> Path:
    return sorted(p for p in kroot.dir("press").glob("*.sql"))[-1]


def test_round_trip_keeps_every_object_and_rollback_swaps_back(kroot, press):
    name, db = press
    before = fingerprint(db)
    export = ok(run(kroot, db, name, "db:export"))
    dump = newest_dump(kroot, name)
    text = dump.read_bytes()
    assert text.rstrip().splitlines()[-1].startswith(b"-- Dump completed")
    manifest = json.loads(dump.with_name(dump.name + ".json").read_text())
    import hashlib
    assert manifest["sha256"] == hashlib.sha256(text).hexdigest()
    assert manifest["verification"]["ok"] is True and db.engine in export.output.lower()
    assert not list(kroot.dir("press").glob("*.partial"))

    damage(db)
    damaged = fingerprint(db)
    assert damaged != before

    ok(run(kroot, db, name, "db:import"))
    assert fingerprint(db) == before
    # the previous tables (and objects) are kept for db:rollback
    prev = f"{db.database}__kompose_prev"
    assert "wp_new_plugin" in db.tables(prev)
    assert f"{db.database}__kompose_tmp" not in db.databases()
    # the restored trigger fires on the live tables, the routines run
    db.sql("INSERT INTO wp_comments (comment_post_ID, comment_content) VALUES (3, 'after the import')")
    assert db.scalar("SELECT comment_count FROM wp_posts WHERE ID = 3") == "1"
    assert db.scalar("SELECT post_slug(' Hello World ')") == "hello-world"
    assert db.scalar("SELECT login_lower FROM wp_users WHERE ID = 1") == "admin"
    # AUTO_INCREMENT counters carried over: the next id is above the dump's counter
    db.sql("INSERT INTO wp_users (user_login, user_email) VALUES ('next', 'n@example.org')")
    assert int(db.scalar("SELECT max(ID) FROM wp_users")) == 100

    ok(run(kroot, db, name, "db:rollback"))
    assert "wp_new_plugin" in db.tables()
    back = fingerprint(db)
    assert back["checksums"] == damaged["checksums"] and back["triggers"] == damaged["triggers"]
    assert back["views"] == damaged["views"] and back["routines"] == damaged["routines"]
    # and once more: the import's result is live again
    ok(run(kroot, db, name, "db:rollback"))
    assert "wp_new_plugin" not in db.tables()
    assert fingerprint(db)["triggers"] == before["triggers"]


def test_the_engine_is_detected_from_the_container_and_named_in_the_plan(kroot, press):
    name, db = press
    ok(run(kroot, db, name, "db:export"))
    plan = ok(run(kroot, db, "--verbose", name, "db:import", "--dry-run"))  # the swap's script in full
    assert f"engine {db.engine}" in plan.output and "RENAME TABLE" in plan.output
    listing = ok(run(kroot, db, "--list"))
    assert name in listing.output


def test_dry_run_json_and_verify_and_list(kroot, press):
    name, db = press
    plan = ok(run(kroot, db, name, "db:export", "--dry-run", "--json"))
    assert ("mysqldump" if db.engine == "mysql" else "mariadb-dump") in plan.stdout
    ok(run(kroot, db, name, "db:export"))
    verify = ok(run(kroot, db, name, "db:verify"))
    assert "Dump completed" in verify.output or "end-of-dump marker" in verify.output
    listing = ok(run(kroot, db, name, "db:list"))
    assert newest_dump(kroot, name).name in listing.output


def test_a_truncated_dump_is_refused_and_live_stays(kroot, press):
    name, db = press
    ok(run(kroot, db, name, "db:export"))
    dump = newest_dump(kroot, name)
    data = dump.read_bytes()
    cut = dump.with_name(f"{db.database}_20000101_000000.sql")  # an older name of the same database
    cut.write_bytes(data[: len(data) // 2])
    before = fingerprint(db)
    result = run(kroot, db, name, "db:import", cut.name)
    assert result.code != 0 and "Dump completed" in result.output, str(result)
    assert "Traceback" not in result.output
    assert fingerprint(db) == before
    assert f"{db.database}__kompose_tmp" not in db.databases()


def test_a_failure_before_the_swap_leaves_live_and_the_previous_copy_untouched(kroot, press):
    name, db = press
    ok(run(kroot, db, name, "db:export"))
    ok(run(kroot, db, name, "db:import"))  # a previous copy exists now
    prev = f"{db.database}__kompose_prev"
    damage(db)
    before, prev_before = fingerprint(db), db.checksums(prev)
    (kroot.dir("press") / "hooks.sh").write_text('hook_pre_swap() { echo "no swap today" >&2; return 3; }\n')
    result = run(kroot, db, name, "db:import")
    assert result.code != 0 and "no swap today" in result.output, str(result)
    assert fingerprint(db) == before
    assert db.checksums(prev) == prev_before
    assert f"{db.database}__kompose_tmp" not in db.databases()


def test_a_failure_in_the_swaps_first_step_changes_nothing(kroot, press):
    """The swap's script fails while it captures the objects (a view of the live database that
    references a dropped table cannot be dumped): before any drop or rename, so the live database,
    its previous copy and every trigger stay as they were, and the temporary database goes."""
    name, db = press
    ok(run(kroot, db, name, "db:export"))
    ok(run(kroot, db, name, "db:import"))  # a previous copy exists now
    prev = f"{db.database}__kompose_prev"
    damage(db)
    db.script("CREATE TABLE kompose_gone (id int);\nCREATE VIEW wp_broken AS SELECT id FROM kompose_gone;\n"
              "DROP TABLE kompose_gone;\n")
    before, prev_before = fingerprint(db), db.checksums(prev)
    result = run(kroot, db, name, "db:import")
    assert result.code != 0 and "wp_broken" in result.output, str(result)
    assert "Traceback" not in result.output
    assert fingerprint(db) == before
    assert db.checksums(prev) == prev_before
    assert f"{db.database}__kompose_tmp" not in db.databases()


def test_a_failing_rename_puts_the_triggers_back(kroot, press):
    """The swap itself fails: a client's open transaction holds a live table past
    KOMPOSE_SWAP_LOCK_TIMEOUT. The triggers (dropped for the rename) are back, nothing moved."""
    name, db = press
    with (kroot.dir("press") / ".env").open("a") as env:
        env.write("KOMPOSE_SWAP_LOCK_TIMEOUT=3\n")
    ok(run(kroot, db, name, "db:export"))
    before = fingerprint(db)
    holder = hold_a_live_table(db)
    try:
        started = time.monotonic()
        result = run(kroot, db, name, "db:import")
        assert result.code != 0 and "the swap failed" in result.output, str(result)
        assert time.monotonic() - started < 60
    finally:
        holder.kill()
    assert fingerprint(db) == before  # the triggers are back, nothing moved


def hold_a_live_table(db: MariaDB) -> subprocess.Popen:
    """A client holding a metadata lock on a live table: an open transaction that read it."""
    argv, env = db.docker_exec(database=db.database)
    holder = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    holder.stdin.write("START TRANSACTION; SELECT count(*) FROM wp_users; SELECT SLEEP(60);\n")
    holder.stdin.flush()
    time.sleep(1)
    return holder


def end_sessions(db: MariaDB, like: str) -> None:
    """KILL the server's sessions on the test's database running a statement ``LIKE like``."""
    for session in db.rows(f"SELECT id FROM information_schema.processlist WHERE db = '{db.database}' "
                           f"AND info LIKE '{like}'", database="mysql"):
        db.sql(f"KILL {session[0]}", database="mysql")


def test_a_failing_rename_keeps_the_previous_rollback_copy(kroot, press):
    """Issue 21: the copy the previous import kept survives a swap whose RENAME fails (a lock
    held past KOMPOSE_SWAP_LOCK_TIMEOUT): it leaves <db>__kompose_prev only in that RENAME, so
    db:rollback afterwards still returns to the state before the previous import."""
    name, db = press
    prev, old = f"{db.database}__kompose_prev", f"{db.database}__kompose_old"
    with (kroot.dir("press") / ".env").open("a") as env:
        env.write("KOMPOSE_SWAP_LOCK_TIMEOUT=3\n")
    ok(run(kroot, db, name, "db:export"))
    damage(db)
    damaged = fingerprint(db)
    ok(run(kroot, db, name, "db:import"))  # the damaged state is the rollback copy now
    live, kept = fingerprint(db), fingerprint(db, prev)
    holder = hold_a_live_table(db)
    try:
        result = run(kroot, db, name, "db:import")
        assert result.code != 0 and "the swap failed" in result.output, str(result)
    finally:
        holder.kill()
        end_sessions(db, "SELECT SLEEP%")  # it outlives the killed client: the rollback must rename
    assert fingerprint(db) == live
    assert fingerprint(db, prev) == kept, "the failed swap cost the rollback copy"
    assert not {old, f"{db.database}__kompose_tmp"} & set(db.databases())
    ok(run(kroot, db, name, "db:rollback"))
    back = fingerprint(db)
    assert back["checksums"] == damaged["checksums"] and back["triggers"] == damaged["triggers"]
    assert back["views"] == damaged["views"] and back["routines"] == damaged["routines"]


def test_the_next_run_finishes_a_swap_killed_around_its_rename(kroot, press):
    """A kill before the swap's RENAME leaves an empty <db>__kompose_old (and the restored
    <db>__kompose_tmp); a kill after it, the copy before the previous one in <db>__kompose_old
    (and an empty <db>__kompose_tmp). The next run drops both and says so; the live database
    and its rollback copy (<db>__kompose_prev) stay, and db:rollback finds that one copy."""
    name, db = press
    prev, old, tmp = (f"{db.database}__kompose_{suffix}" for suffix in ("prev", "old", "tmp"))
    ok(run(kroot, db, name, "db:export"))
    damage(db)
    damaged = fingerprint(db)
    ok(run(kroot, db, name, "db:import"))
    live, kept = fingerprint(db), fingerprint(db, prev)
    # killed before the rename: old made afresh, tmp holding the restore
    db.sql(f"CREATE DATABASE {quote_mariadb_ident(old)}", database="mysql")
    db.sql(f"CREATE DATABASE {quote_mariadb_ident(tmp)}", database="mysql")
    db.sql("CREATE TABLE wp_users (id int)", database=tmp)
    export = ok(run(kroot, db, name, "db:export"))
    assert f"dropped {old}" in export.output and f"dropped the leftover temporary database {tmp}" in export.output
    assert not {old, tmp} & set(db.databases())
    assert fingerprint(db) == live and fingerprint(db, prev) == kept
    # killed after the rename: old holding the copy before the previous one, tmp empty
    db.sql(f"CREATE DATABASE {quote_mariadb_ident(old)}", database="mysql")
    db.sql("CREATE TABLE wp_users (id int)", database=old)
    db.sql(f"CREATE DATABASE {quote_mariadb_ident(tmp)}", database="mysql")
    rollback = ok(run(kroot, db, name, "db:rollback"))
    assert f"dropped {old}" in rollback.output, str(rollback)
    assert "left by a swap that stopped after moving the tables" in rollback.output
    assert not {old, tmp} & set(db.databases())
    back = fingerprint(db)
    assert back["checksums"] == damaged["checksums"] and back["triggers"] == damaged["triggers"]
    assert fingerprint(db, prev)["checksums"] == live["checksums"]


def test_a_swap_killed_while_its_rename_waits_is_repaired_by_the_next_run(kroot, press):
    """A real kill: kompose (SIGKILL) and then the swap's script in the container (its sh and the
    client), while the RENAME waits for a table a client holds. Whether the server ran the rename
    after all or not, the next run leaves the live database and one whole rollback copy, no
    leftover, and db:rollback swaps them."""
    name, db = press
    prev, old, tmp = (f"{db.database}__kompose_{suffix}" for suffix in ("prev", "old", "tmp"))
    with (kroot.dir("press") / ".env").open("a") as env:
        env.write("KOMPOSE_SWAP_LOCK_TIMEOUT=50\n")
    ok(run(kroot, db, name, "db:export"))
    restored = db.checksums()
    damage(db)
    damaged = db.checksums()
    ok(run(kroot, db, name, "db:import"))
    db.sql("UPDATE wp_posts SET post_title = 'after the first import'")
    live, kept = db.checksums(), fingerprint(db, prev)
    renaming = ("SELECT count(*) FROM information_schema.processlist WHERE info LIKE 'RENAME TABLE%'")
    holder = hold_a_live_table(db)
    try:
        kompose = subprocess.Popen([sys.executable, "-m", "kompose", "--root", str(kroot.path), name, "db:import"],
                                   env=kompose_env(None), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: db.scalar(renaming, database="mysql") != "0", timeout=60, interval=0.1,
                 message="the swap's RENAME waiting for the held table")
        kompose.send_signal(signal.SIGKILL)
        kompose.wait(timeout=10)
        # the script goes on in the container: kill it too, its sh and every process below
        top = subprocess.run(["docker", "top", db.container.id, "-eo", "pid,ppid,args"], capture_output=True,
                             text=True, check=True).stdout.splitlines()[1:]
        procs = [(int(pid), int(ppid), args) for pid, ppid, args in (line.split(None, 2) for line in top)]
        doomed = {pid for pid, _, args in procs if "kompose-swap" in args}
        assert doomed, top
        while grown := {pid for pid, ppid, _ in procs if ppid in doomed} - doomed:
            doomed |= grown
        for pid in sorted(doomed):
            os.kill(pid, signal.SIGKILL)
    finally:
        holder.kill()
        end_sessions(db, "SELECT SLEEP%")
    wait_for(lambda: db.scalar(renaming, database="mysql") == "0", timeout=60, interval=0.1,
             message="the RENAME done or given up")
    result = ok(run(kroot, db, name, "db:export"))
    assert not {old, tmp} & set(db.databases()), str(result)
    if db.checksums() == live:  # the rename never ran: the live database and its rollback copy as they were
        assert fingerprint(db, prev) == kept
        back = damaged
    else:  # it ran when the table was let go: the import's tables are live, the previous ones in prev
        assert db.checksums() == restored and db.checksums(prev) == live
        assert "left by a swap that stopped after moving the tables" in result.output, str(result)
        back = live
    ok(run(kroot, db, name, "db:rollback"))
    assert db.checksums() == back


def test_import_while_a_client_is_connected(kroot, press):
    name, db = press
    ok(run(kroot, db, name, "db:export"))
    damage(db)
    # an app's idle connection, and one that keeps querying during the import
    stop = threading.Event()
    errors: list[str] = []

    def querying() -> None:
        while not stop.is_set():
            code, out = db.exec([*db.client_argv(db.database), "-e", "SELECT count(*) FROM wp_posts"])
            if code != 0 and "doesn't exist" not in out:
                errors.append(out)
            time.sleep(0.05)

    argv, env = db.docker_exec("-N", database=db.database)
    idle = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    thread = threading.Thread(target=querying)
    thread.start()
    try:
        ok(run(kroot, db, name, "db:import"))
    finally:
        stop.set()
        thread.join()
    # the idle session is still connected and sees the restored data
    out, _ = idle.communicate("SELECT count(*) FROM wp_users;\n", timeout=30)
    assert out.strip() == "3"
    assert not errors, errors[:3]


def test_the_password_is_in_no_argv(kroot, press):
    name, db = press
    ok(run(kroot, db, name, "db:export"))
    seen: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            # the host's ps of the container's processes, full command lines
            top = subprocess.run(["docker", "top", db.container.id, "-eo", "pid,args"], capture_output=True,
                                 text=True)
            seen.extend(top.stdout.splitlines()[1:])
            time.sleep(0.02)

    thread = threading.Thread(target=watch)
    thread.start()
    try:
        ok(run(kroot, db, name, "db:import"))
        ok(run(kroot, db, name, "db:export"))
    finally:
        stop.set()
        thread.join()
    assert any(db.client in line and "--user=root" in line for line in seen), seen[:20]
    assert not [line for line in seen if db.root_password in line]
    plan = ok(run(kroot, db, name, "db:import", "--dry-run", "--json"))
    assert db.root_password not in plan.stdout


def test_the_next_run_cleans_up_after_a_killed_import_and_says_so(kroot, press):
    name, db = press
    tmp = f"{db.database}__kompose_tmp"
    before = fingerprint(db)
    # a restore killed half-way: the temporary database with some tables
    db.sql(f"CREATE DATABASE {quote_mariadb_ident(tmp)}", database="mysql")
    db.sql("CREATE TABLE half (id int)", database=tmp)
    export = ok(run(kroot, db, name, "db:export"))
    assert f"dropped the leftover temporary database {tmp}" in export.output
    assert tmp not in db.databases() and fingerprint(db) == before
    # a swap killed after its rename: the temporary database without tables
    db.sql(f"CREATE DATABASE {quote_mariadb_ident(tmp)}", database="mysql")
    rollback = run(kroot, db, name, "db:rollback")
    assert "left by a swap that stopped after moving the tables" in rollback.output, str(rollback)
    # no previous copy yet: the rollback refuses, one line, and changes nothing
    assert rollback.code != 0 and "no previous database" in rollback.output
    assert fingerprint(db) == before


def test_zstd_export_round_trip_and_postgres_only_settings_of_the_root_fall_back(kroot, press):
    name, db = press
    with (kroot.path / ".env").open("a") as env:
        env.write("KOMPOSE_EXPORT_FORMAT=custom\nKOMPOSE_EXPORT_COMPRESS=gzip\n")
    plan = ok(run(kroot, db, name, "db:export", "--dry-run"))
    assert f"is for PostgreSQL: a {db.engine} dump is plain SQL" in plan.output
    assert "not compressed" in plan.output
    refused = run(kroot, db, name, "db:export", "--format", "custom")
    assert refused.code == 2 and "plain SQL" in refused.output and "Traceback" not in refused.output
    before = fingerprint(db)
    ok(run(kroot, db, name, "db:export", "--compress", "zstd"))
    dumps = list(kroot.dir("press").glob("*.sql.zst"))
    assert len(dumps) == 1
    damage(db)
    ok(run(kroot, db, name, "db:import", dumps[0].name))
    assert fingerprint(db) == before


def counts(db: MariaDB, database: str | None = None) -> dict[str, int]:
    return {table: db.count(table, database) for table in db.tables(database)}


def test_the_manifest_counts_each_tables_rows_and_verify_and_drill_check_them(kroot, press):
    name, db = press
    db.sql("INSERT INTO wp_audit (post_id, note) VALUES (1, 'a;b),(c'), (2, 'it''s\\n(x')")
    ok(run(kroot, db, name, "db:export"))
    dump = newest_dump(kroot, name)
    manifest_path = dump.with_name(dump.name + ".json")
    manifest = json.loads(manifest_path.read_text())
    live = counts(db)
    assert manifest["rows"] == live and live["wp_audit"] == 2 and live["wp_users"] == 3
    verify = ok(run(kroot, db, name, "db:verify"))
    assert f"rows of {len(live)} table(s) match its manifest" in verify.output

    before = fingerprint(db)
    drill = ok(run(kroot, db, name, "db:drill"))
    drill_db = f"{db.database}__kompose_drill"
    assert f"{drill_db} holds the rows of all {len(live)} table(s)" in drill.output, str(drill)
    assert drill_db not in db.databases() and fingerprint(db) == before
    state = json.loads((kroot.dir("press") / ".kompose-drill.json").read_text())
    assert state["ok"] is True and state["row_counts"] == live

    # a manifest that records other counts than the dump holds: verify and drill say so
    manifest["rows"]["wp_posts"] = 4
    manifest_path.write_text(json.dumps(manifest))
    bad = run(kroot, db, name, "db:verify")
    assert bad.code != 0 and "row counts differ: wp_posts: its manifest records 4, it holds 3" in bad.output
    failed = run(kroot, db, name, "db:drill")
    assert failed.code != 0 and "wp_posts: its manifest records 4, the dump holds 3" in failed.output, str(failed)
    assert drill_db not in db.databases() and "Traceback" not in failed.output
    assert json.loads((kroot.dir("press") / ".kompose-drill.json").read_text())["ok"] is False


def test_a_drill_runs_its_sql_hooks_and_fails_when_the_restore_lacks_rows(kroot, press):
    """The restored copy is counted against the dump's INSERT rows: a restore that lost rows (here a
    dump, without its manifest, whose last statement deletes one) fails the drill, which drops its copy."""
    name, db = press
    ok(run(kroot, db, name, "db:export"))
    sql_dir = kroot.dir("press") / "sql" / "drill"
    sql_dir.mkdir(parents=True)
    (sql_dir / "010_smoke.sql").write_text("SELECT CONCAT('drilling ', @database, ' of ', @stack);\n"
                                           "SELECT count(*) FROM wp_posts;\n")
    drill = ok(run(kroot, db, name, "db:drill"))
    assert f"drilling {db.database}__kompose_drill of {name}" in drill.output, str(drill)
    dump = newest_dump(kroot, name)
    dump.with_name(dump.name + ".json").unlink()
    text = dump.read_text()
    at = text.rindex("-- Dump completed")
    dump.write_text(text[:at] + "DELETE FROM wp_comments WHERE comment_ID = 3;\n" + text[at:])
    failed = run(kroot, db, name, "db:drill")
    drill_db = f"{db.database}__kompose_drill"
    assert failed.code != 0 and f"wp_comments: the dump holds 3, {drill_db} has 2" in failed.output, str(failed)
    assert drill_db not in db.databases()
    assert "drilling" not in failed.output  # the check comes before the drill's hooks


def test_in_place_import_empties_the_live_database_and_restores_into_it(kroot, press):
    name, db = press
    ok(run(kroot, db, name, "db:export"))
    before = fingerprint(db)
    damage(db)
    plan = ok(run(kroot, db, name, "db:import", "--in-place", "--dry-run"))
    assert "--in-place: the live database is emptied" in plan.output
    result = ok(run(kroot, db, name, "db:import", "--in-place"))
    assert f"emptied {db.database}" in result.output, str(result)
    assert fingerprint(db) == before and "wp_new_plugin" not in db.tables()
    assert f"{db.database}__kompose_tmp" not in db.databases()
    assert f"{db.database}__kompose_prev" not in db.databases()  # no previous copy: nothing to roll back to


def test_a_truncated_dump_is_refused_before_an_in_place_import_drops_anything(kroot, press):
    name, db = press
    ok(run(kroot, db, name, "db:export"))
    dump = newest_dump(kroot, name)
    cut = dump.with_name(f"{db.database}_20000101_000000.sql")
    cut.write_bytes(dump.read_bytes()[:-200])
    before = fingerprint(db)
    result = run(kroot, db, name, "db:import", "--in-place", cut.name)
    assert result.code != 0 and "Dump completed" in result.output, str(result)
    assert fingerprint(db) == before


def test_sql_pre_swap_hooks_run_on_the_restored_copy_before_the_swap(kroot, press):
    name, db = press
    ok(run(kroot, db, name, "db:export"))
    damage(db)
    sql_dir = kroot.dir("press") / "sql" / "pre_swap"
    sql_dir.mkdir(parents=True)
    (sql_dir / "010_scrub.sql").write_text(
        "SELECT CONCAT('scrubbing ', @database, ' for ', @stack, ' (', @hook, ')');\n"
        "UPDATE wp_users SET user_email = CONCAT('user', ID, '@example.invalid');\n")
    result = ok(run(kroot, db, name, "db:import"))
    assert f"scrubbing {db.database}__kompose_tmp for {name} (pre_swap)" in result.output, str(result)
    assert db.rows("SELECT DISTINCT user_email LIKE '%@example.invalid' FROM wp_users") == [("1",)]
    assert "wp_new_plugin" not in db.tables()

    # a failing one stops the import: the live database stays as it was, the error names file and line
    (sql_dir / "020_check.sql").write_text("SELECT 1;\nSELEC oops;\n")
    damage_before = fingerprint(db)
    failed = run(kroot, db, name, "db:import")
    assert failed.code != 0 and "020_check.sql:2" in failed.output, str(failed)
    assert "Traceback" not in failed.output
    assert fingerprint(db) == damage_before
    assert f"{db.database}__kompose_tmp" not in db.databases()


def test_an_atomic_sql_hook_directory_rolls_its_data_changes_back(kroot, press):
    name, db = press
    sql_dir = kroot.dir("press") / "sql" / "post_db_export"
    sql_dir.mkdir(parents=True)
    (sql_dir / "ATOMIC").write_text("")
    (sql_dir / "010_note.sql").write_text("INSERT INTO wp_options (option_name, option_value) "
                                          "VALUES ('last_export', @dump_file);\n")
    (sql_dir / "020_fail.sql").write_text("SELECT no_such_column FROM wp_options;\n")
    failed = run(kroot, db, name, "db:export")
    assert failed.code != 0 and "020_fail.sql:1" in failed.output, str(failed)
    assert "rolled back: its data changes" in failed.output
    assert db.scalar("SELECT count(*) FROM wp_options WHERE option_name = 'last_export'") == "0"
    (sql_dir / "020_fail.sql").unlink()
    ok(run(kroot, db, name, "db:export"))
    assert db.scalar("SELECT option_value FROM wp_options WHERE option_name = 'last_export'").endswith(".sql")
