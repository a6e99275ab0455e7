"""A restore gives back the same database, and the live database is never left closed.

Material: tests/data/pagila_mini.sql, a compact pagila-like sample (partitioned payments, a
materialized view, RLS, grants, a SECURITY DEFINER function) owned by a non-superuser app
role, in a database made the way a hardened install makes it: ICU locale sv-SE, CONNECTION
LIMIT 50, closed to PUBLIC, per-role settings. DB_USER is the app's owner role; kompose's
database-level steps run as the container's superuser over its unix socket.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from tests.helpers import SqlError, kompose_env, wait_for

pytestmark = pytest.mark.docker

SAMPLE = Path(__file__).parent.parent / "data" / "pagila_mini.sql"
OWNER_PASSWORD = "pw-owner-fid-1"

PG_DATABASE_COLUMNS = ("pg_get_userbyid(datdba) AS owner, pg_encoding_to_char(encoding) AS encoding, datlocprovider, "
                       "daticulocale, datcollate, datctype, datconnlimit, datacl::text, datallowconn, "
                       "shobj_description(oid, 'pg_database') AS comment")


def _copy_in(server, path: Path, target: str) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        data = path.read_bytes()
        info = tarfile.TarInfo(target.lstrip("/").rsplit("/", 1)[-1])
        info.size, info.mode = len(data), 0o644
        tar.addfile(info, io.BytesIO(data))
    server.container.put_archive(os.path.dirname(target), buffer.getvalue())


def _sample_server(postgres_factory):
    server = postgres_factory(user="kompose", password="pw-super-fid", database="postgres")
    for statement in (
        f"CREATE ROLE app_owner LOGIN CREATEDB PASSWORD '{OWNER_PASSWORD}'",
        "CREATE ROLE app_reader LOGIN", "CREATE ROLE app_clerk LOGIN", "CREATE ROLE outsider LOGIN",
        "CREATE DATABASE app OWNER app_owner TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu "
        "ICU_LOCALE 'sv-SE' LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8' CONNECTION LIMIT 50",
        "REVOKE ALL ON DATABASE app FROM PUBLIC",
        "GRANT CONNECT ON DATABASE app TO app_reader, app_clerk",
        "GRANT TEMPORARY ON DATABASE app TO app_clerk WITH GRANT OPTION",
        "COMMENT ON DATABASE app IS 'DVD rental (pagila-like sample)'",
        "ALTER DATABASE app SET work_mem = '8MB'",
        """ALTER DATABASE app SET search_path = "$user", public""",
        "ALTER ROLE app_reader IN DATABASE app SET default_transaction_read_only = on",
        "ALTER ROLE app_clerk IN DATABASE app SET statement_timeout = '3s'",
        "ALTER ROLE app_clerk IN DATABASE app SET app.store = '1'",
    ):
        server.sql(statement, database="postgres")
    _copy_in(server, SAMPLE, "/tmp/pagila_mini.sql")
    code, output = server.exec(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-U", "app_owner", "-d", "app",
                                "-f", "/tmp/pagila_mini.sql"])
    assert code == 0, output
    return server


def _stack(kroot, server, extra: str = "") -> str:
    return kroot.stack(
        "rent",
        compose="services: {}\n",
        env=f"DB_CONTAINER={server.container.name}\nDB_NAME=app\nDB_USER=app_owner\nDB_PASSWORD={OWNER_PASSWORD}\n"
            + extra,
    )


def _database_row(server) -> str:
    return server.scalar(f"SELECT {PG_DATABASE_COLUMNS} FROM pg_database WHERE datname = 'app'", database="postgres")


def _role_settings(server) -> list[tuple[str, ...]]:
    return server.rows(
        "SELECT coalesce(r.rolname, '*'), array_to_string(s.setconfig, ',') FROM pg_db_role_setting s "
        "JOIN pg_database d ON d.oid = s.setdatabase LEFT JOIN pg_roles r ON r.oid = s.setrole "
        "WHERE d.datname = 'app' ORDER BY 1", database="postgres")


def _connects(server, role: str) -> bool:
    try:
        server.sql("SELECT 1", database="app", user=role)
        return True
    except SqlError as exc:
        assert "permission denied for database" in str(exc) or "not currently accepting" in str(exc), exc
        return False


def _sorted_names(server) -> list[str]:
    return server.sql("SELECT string_agg(DISTINCT last_name, ' ' ORDER BY last_name) FROM actor",
                      database="app").split()


def _allows_connections(server, database: str = "app") -> str:
    return server.scalar(f"SELECT datallowconn FROM pg_database WHERE datname = '{database}'", database="postgres")


def _databases(server) -> list[str]:
    # the copy the last import kept is dropped in the background once the new database is live
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and server.scalar(
            "SELECT count(*) FROM pg_database WHERE datname = 'app__kompose_old'", database="postgres") != "0":
        time.sleep(0.2)
    return server.scalar("SELECT string_agg(datname, ' ' ORDER BY datname) FROM pg_database "
                         "WHERE datname LIKE 'app%'", database="postgres").split()


@pytest.mark.parametrize("mode", [(), ("--in-place",)], ids=["swap", "in-place"])
def test_import_gives_back_the_same_database(kroot, postgres_factory, mode):
    server = _sample_server(postgres_factory)
    stack = _stack(kroot, server)
    before = (_database_row(server), _role_settings(server))
    swedish = _sorted_names(server)
    assert swedish[-3:] == ["Åkesson", "Ängström", "Öberg"], swedish  # ICU sv-SE: å ä ö after z
    assert not _connects(server, "outsider") and _connects(server, "app_reader")
    checksums = server.checksums("app")

    assert kroot.run(stack, "db:export").code == 0, "export"
    server.sql("DELETE FROM film_actor", database="app")
    result = kroot.run(stack, "db:import", *mode)

    assert result.code == 0, result.output
    assert "warning" not in result.output and OWNER_PASSWORD not in result.output
    # pg_database: owner, encoding, provider, ICU locale, collate, ctype, limit, the ACL, comment
    assert (_database_row(server), _role_settings(server)) == before
    row = _database_row(server)
    assert "|i|sv-SE|" in row and "|50|" in row and "=Tc/" not in row.split("|")[7], row
    assert server.checksums("app") == checksums
    assert _sorted_names(server) == swedish
    # REVOKE ALL ... FROM PUBLIC stays revoked: a login role with no grant is still refused
    assert not _connects(server, "outsider") and _connects(server, "app_reader")
    # app_reader's per-database read-only setting still holds
    with pytest.raises(SqlError, match="read-only transaction"):
        server.sql("CREATE TEMP TABLE x (i int)", database="app", user="app_reader")
    # owners, grants, RLS: the app works as before
    assert server.scalar("SELECT string_agg(DISTINCT tableowner, ',') FROM pg_tables WHERE schemaname = 'public'",
                         database="app") == "app_owner"
    server.sql("INSERT INTO customer (store_id, first_name, last_name) VALUES (1, 'Ny', 'Kund')", database="app",
               user="app_clerk")
    assert server.scalar("SELECT count(DISTINCT store_id) FROM customer", database="app") == "2"
    assert server.sql("SELECT count(DISTINCT store_id) FROM customer", database="app", user="app_clerk") == "1"
    assert _databases(server) == (["app"] if mode else ["app", "app__kompose_prev"])


def test_planner_statistics_are_there_right_after_the_import(kroot, postgres_factory):
    server = _sample_server(postgres_factory)
    stack = _stack(kroot, server)
    assert kroot.run(stack, "db:export").code == 0

    result = kroot.run(stack, "db:import")

    assert result.code == 0, result.output
    # every table with rows, the partitioned parent and the materialized view included
    # (autovacuum never analyses those two)
    missing = server.rows(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'm') "
        "AND NOT EXISTS (SELECT 1 FROM pg_stats s WHERE s.schemaname = 'public' AND s.tablename = c.relname) "
        "ORDER BY 1", database="app")
    assert missing == [], missing
    assert server.scalar("SELECT count(*) FROM pg_stats WHERE tablename = 'payment' AND inherited",
                         database="app") != "0"


def _watch_closed(server, seconds: float) -> subprocess.Popen:
    """One session on the maintenance database reading app's datallowconn every 10 ms for ``seconds``,
    printing '<epoch>|t' or '<epoch>|f' per read: the window in which the app is refused."""
    query = ("SELECT extract(epoch FROM clock_timestamp()), datallowconn FROM pg_database WHERE datname = 'app' "
             "\\\\watch 0.01")
    return subprocess.Popen(
        ["docker", "exec", server.container.name, "bash", "-c",
         f"echo \"{query}\" | timeout {int(seconds)} psql -X -At -U kompose -d postgres"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def _longest_closed(lines: list[str]) -> float:
    longest, since = 0.0, None
    for line in lines:
        parts = line.split("|")
        if len(parts) != 2:
            continue
        stamp, allowed = float(parts[0]), parts[1].strip()
        if allowed == "f":
            since = stamp if since is None else since
            longest = max(longest, stamp - since)
        elif since is not None:
            longest = max(longest, stamp - since)
            since = None
    return longest


def test_a_swap_with_a_connected_client_takes_well_under_a_second(kroot, postgres_factory):
    server = _sample_server(postgres_factory)
    stack = _stack(kroot, server)
    assert kroot.run(stack, "db:export").code == 0
    for attempt in range(3):
        # a client sitting on the live database (the swap must end it and see it gone)
        sitting = subprocess.Popen(["docker", "exec", server.container.name, "psql", "-X", "-U", "app_reader",
                                    "-d", "app", "-c", "SELECT pg_sleep(120)"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: server.scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = 'app' "
                                       "AND query LIKE '%pg_sleep(120)%'", database="postgres") == "1",
                 timeout=10, message="the sitting client")
        watcher = _watch_closed(server, 40)
        started = time.monotonic()
        result = kroot.run(stack, "db:import")
        took = time.monotonic() - started
        sitting.wait(timeout=10)  # ended by the swap
        time.sleep(0.2)
        watcher.terminate()
        lines = watcher.communicate(timeout=10)[0].splitlines()
        assert result.code == 0, result.output
        assert len(lines) > 20 and lines[-1].endswith("|t") and _connects(server, "app_reader")
        closed = _longest_closed(lines)
        print(f"swap with a connected client: the live database refused connections for {closed:.3f} s "
              f"({len(lines)} reads); the import took {took:.1f} s")
        # only while the swap runs: well under a second (it was 10 s: the wait never saw the client leave)
        # (a swap faster than the 10 ms poll shows as 0: never seen closed)
        assert closed < 0.8, (closed, took)


def test_imports_in_a_row_as_the_app_role_keep_the_rollback_copy(kroot, postgres_factory):
    """Issue 16.11: right after an import autovacuum works on the restored database; the next
    import must neither fail on it nor ever lose the rollback copy."""
    server = _sample_server(postgres_factory)
    stack = _stack(kroot, server)
    assert kroot.run(stack, "db:export").code == 0
    for attempt in range(4):
        server.sql(f"INSERT INTO language (name) VALUES ('marker {attempt}')", database="app")
        result = kroot.run(stack, "db:import")
        assert result.code == 0, (attempt, result.output)
        assert _databases(server) == ["app", "app__kompose_prev"], attempt
        # the rollback copy is the database as it was just before this import
        assert server.scalar("SELECT count(*) FROM language WHERE name LIKE 'marker%'",
                             database="app__kompose_prev") == "1"
        assert _allows_connections(server) == "t"


# ------------------------------------------------------------ failures keep the database open


def _hook(kroot, body: str) -> None:
    (kroot.dir("rent") / "hooks.sh").write_text(body)


def test_a_failing_pre_swap_hook_leaves_the_live_database_open_and_untouched(kroot, postgres_factory):
    server = _sample_server(postgres_factory)
    stack = _stack(kroot, server)
    assert kroot.run(stack, "db:export").code == 0
    assert kroot.run(stack, "db:import").code == 0
    server.sql("INSERT INTO language (name) VALUES ('after the dump')", database="app")
    before = (_database_row(server), _role_settings(server), server.checksums("app"))
    # the hook leaves a session on the temporary database, then fails
    _hook(kroot, 'hook_pre_swap() {\n'
                 '  docker exec -d "$KOMPOSE_DB_CONTAINER" psql -X -U kompose -d "$KOMPOSE_DB" -c "SELECT pg_sleep(60)"\n'
                 '  sleep 1; echo "refusing the restored copy" >&2; return 3\n}\n')

    result = kroot.run(stack, "db:import")

    assert result.code != 0
    assert "refusing the restored copy" in result.output
    assert _allows_connections(server) == "t"
    assert (_database_row(server), _role_settings(server), server.checksums("app")) == before
    assert _databases(server) == ["app", "app__kompose_prev"]  # the temporary one dropped, the rollback copy kept


def _admin_app_owner(server) -> str:
    """DB_ADMIN_USER: the app's owner with every right a non-superuser admin needs."""
    server.sql("GRANT pg_signal_backend TO app_owner", database="postgres")
    server.sql("ALTER ROLE app_owner CREATEROLE", database="postgres")
    server.sql("ALTER ROLE app_clerk IN DATABASE app RESET app.store", database="postgres")
    return f"DB_ADMIN_USER=app_owner\nDB_ADMIN_PASSWORD={OWNER_PASSWORD}\n"


def test_a_failed_swap_and_a_failed_clean_up_still_leave_the_live_database_open(kroot, postgres_factory):
    """The swap cannot end a superuser's session on the live database, and the clean-up cannot
    drop the temporary database (a superuser sits on it too): both fail, the live database
    accepts connections at the end (it stayed closed before: the reopen came after the drop)."""
    server = _sample_server(postgres_factory)
    stack = _stack(kroot, server, _admin_app_owner(server))
    assert kroot.run(stack, "db:export").code == 0
    before = server.checksums("app")
    _hook(kroot, 'hook_pre_swap() {\n'
                 '  docker exec -d "$KOMPOSE_DB_CONTAINER" psql -X -U kompose -d "$KOMPOSE_DB" -c "SELECT pg_sleep(30)"\n'
                 '  docker exec -d "$KOMPOSE_DB_CONTAINER" psql -X -U kompose -d app -c "SELECT pg_sleep(30)"\n'
                 '  sleep 1\n}\n')

    result = kroot.run(stack, "db:import")

    assert result.code != 0, result.output
    assert "the swap failed" in result.output, result.output
    assert "clean-up step failed too" in result.output, result.output
    assert "Traceback" not in result.output
    assert _allows_connections(server) == "t"
    assert server.checksums("app") == before
    assert not (kroot.dir("rent") / ".kompose-swap.json").exists()


def test_a_failed_rollback_leaves_the_live_database_open(kroot, postgres_factory):
    server = _sample_server(postgres_factory)
    stack = _stack(kroot, server, _admin_app_owner(server))
    assert kroot.run(stack, "db:export").code == 0
    assert kroot.run(stack, "db:import").code == 0
    server.sql("INSERT INTO language (name) VALUES ('live only')", database="app")
    before = server.checksums("app")
    _hook(kroot, 'hook_pre_db_rollback() {\n'
                 f'  docker exec -d {server.container.name} psql -X -U kompose -d app -c "SELECT pg_sleep(30)"\n'
                 '  sleep 1\n}\n')

    result = kroot.run(stack, "db:rollback")

    assert result.code != 0, result.output
    assert "Traceback" not in result.output
    assert _allows_connections(server) == "t"
    assert _allows_connections(server, "app__kompose_prev") == "t"
    assert server.checksums("app") == before


def test_after_kompose_is_killed_mid_swap_status_flags_it_and_the_next_command_reopens(kroot, postgres_factory):
    """A session that cannot be ended at once (a superuser's COPY FROM PROGRAM waits for its program,
    which ignores SIGTERM) holds the swap with the live database closed; kompose is killed with SIGKILL then."""
    server = _sample_server(postgres_factory)
    stack = _stack(kroot, server)
    assert kroot.run(stack, "db:export").code == 0
    server.sql("CREATE TABLE public.hold (line text)", database="app", user="app_owner")
    holder = subprocess.Popen(["docker", "exec", server.container.name, "psql", "-X", "-U", "kompose", "-d", "app",
                               "-c", """COPY public.hold FROM PROGRAM 'trap "" TERM; exec sleep 25'"""],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        kompose = subprocess.Popen([sys.executable, "-m", "kompose", "--root", str(kroot.path), stack, "db:import"],
                                   env=kompose_env(None), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        mark = kroot.dir("rent") / ".kompose-swap.json"
        wait_for(lambda: mark.exists() and _allows_connections(server) == "f", timeout=60, interval=0.05,
                 message="the swap closing the live database")
        kompose.send_signal(signal.SIGKILL)
        kompose.wait(timeout=10)
        assert _allows_connections(server) == "f"

        status = kroot.run("status")
        assert "may be refusing connections" in status.output and "CLOSED?" in status.output, status.output

        result = kroot.run(stack, "db:export")
        assert result.code == 0, result.output
        assert "re-opened app" in result.output
        assert _allows_connections(server) == "t"
        assert not mark.exists()
        assert "refusing" not in kroot.run("status").output
    except BaseException:
        print(server.container.logs(tail=60).decode())
        raise
    finally:
        holder.kill()
