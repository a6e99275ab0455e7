"""An import's swap carries the database object's own properties over to the restored copy.

Settings (ALTER DATABASE ... SET, also per role), the comment, the grants and the owner
belong to the database object, not its contents: a plain rename swap would leave them on
the previous database and the app would silently lose them.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.docker


def _stack(kroot, server, user: str, password: str) -> str:
    return kroot.stack(
        "db",
        compose="services: {}\n",
        env=f"DB_CONTAINER={server.container.name}\nDB_NAME=app\nDB_USER={user}\nDB_PASSWORD={password}\n",
    )


def _properties(server) -> dict[str, str]:
    return {
        "settings": server.scalar(
            "SELECT string_agg(coalesce(r.rolname, '*') || ':' || array_to_string(s.setconfig, ','), ' ' "
            "ORDER BY r.rolname NULLS FIRST) FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase "
            "LEFT JOIN pg_roles r ON r.oid = s.setrole WHERE d.datname = 'app'"
        ),
        "comment": server.scalar("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = 'app'"),
        "acl": server.scalar("SELECT datacl::text FROM pg_database WHERE datname = 'app'"),
        "owner": server.scalar("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'app'"),
    }


def _decorate(server, owner: str) -> None:
    server.sql("CREATE ROLE reader")
    server.sql(f"ALTER DATABASE app OWNER TO {owner}")
    server.sql("ALTER DATABASE app SET work_mem = '7MB'")
    server.sql("""ALTER DATABASE app SET search_path = "$user", public, "odd ""schema\"""")
    server.sql("COMMENT ON DATABASE app IS 'the app''s database'")
    server.sql("GRANT CONNECT, TEMPORARY ON DATABASE app TO reader")
    server.sql("ALTER ROLE reader IN DATABASE app SET statement_timeout = '5s'")
    server.sql("CREATE TABLE t (id int)", database="app")
    server.sql("INSERT INTO t SELECT generate_series(1, 10)", database="app")


def test_superuser_import_keeps_settings_comment_grants_and_owner(kroot, postgres_factory):
    server = postgres_factory(user="kompose", password="pw-super-1", database="app")
    server.sql("CREATE ROLE owner_role LOGIN")
    _decorate(server, "owner_role")
    before = _properties(server)
    _stack(kroot, server, "kompose", "pw-super-1")

    assert kroot.run(kroot.name("db"), "db:export").code == 0
    server.sql("DELETE FROM t", database="app")
    result = kroot.run(kroot.name("db"), "db:import")

    assert result.code == 0, result.output
    assert server.count("t", database="app") == 10
    assert _properties(server) == before
    assert "warning" not in result.output


@pytest.mark.parametrize("mode", [(), ("--in-place",)], ids=["swap", "in-place"])
def test_app_role_import_carries_everything_through_the_admin_connection(kroot, postgres_factory, mode):
    """DB_USER is the database's non-superuser owner (the app-role layout): kompose's swap runs as
    the container's superuser over its unix socket, so even settings only a superuser may set
    (another role's per-database statement_timeout, default_transaction_read_only) come back;
    they used to be dropped with a warning and exit 0."""
    server = postgres_factory(user="kompose", password="pw-super-2", database="app")
    server.sql("CREATE ROLE app_owner LOGIN CREATEDB PASSWORD 'pw-app-2'")
    _decorate(server, "app_owner")
    server.sql("CREATE ROLE app_ro LOGIN")
    server.sql("ALTER ROLE app_ro IN DATABASE app SET default_transaction_read_only = on")
    server.sql("ALTER TABLE t OWNER TO app_owner", database="app")
    before = _properties(server)
    _stack(kroot, server, "app_owner", "pw-app-2")

    assert kroot.run(kroot.name("db"), "db:export").code == 0
    result = kroot.run(kroot.name("db"), "db:import", *mode)

    assert result.code == 0, result.output
    assert server.count("t", database="app") == 10
    assert _properties(server) == before
    assert "reader:statement_timeout=5s" in before["settings"] and "default_transaction_read_only=on" in before["settings"]
    assert "warning" not in result.output
    assert "pw-app-2" not in result.output
    # no holder or temporary database left; the swap keeps the previous database for a rollback
    assert _databases(server) == (["app"] if mode else ["app", "app__kompose_prev"])


def test_a_non_superuser_admin_is_refused_before_anything_changes(kroot, postgres_factory):
    """DB_ADMIN_USER names a role that lacks rights: one line saying what to grant, before the
    swap; the live database, its properties and the rollback copy untouched."""
    server = postgres_factory(user="kompose", password="pw-super-5", database="app")
    server.sql("CREATE ROLE app_owner LOGIN CREATEDB PASSWORD 'pw-app-5'")
    _decorate(server, "app_owner")
    server.sql("ALTER TABLE t OWNER TO app_owner", database="app")
    stack = _stack(kroot, server, "app_owner", "pw-app-5")
    assert kroot.run(stack, "db:export").code == 0
    assert kroot.run(stack, "db:import").code == 0  # through the socket superuser: a rollback copy exists
    server.sql("INSERT INTO t VALUES (11)", database="app")
    before = _properties(server)
    (kroot.dir("db") / ".env").write_text(
        (kroot.dir("db") / ".env").read_text() + "DB_ADMIN_USER=app_owner\nDB_ADMIN_PASSWORD=pw-app-5\n")

    result = kroot.run(stack, "db:import")

    assert result.code != 0
    lines = [line for line in result.output.splitlines() if "lacks rights" in line]
    assert lines, result.output
    assert "GRANT pg_signal_backend TO app_owner" in lines[0] and "superuser" in lines[0], result.output
    assert "Traceback" not in result.output and "pw-app-5" not in result.output
    assert _properties(server) == before
    assert server.count("t", database="app") == 11
    assert _databases(server) == ["app", "app__kompose_prev"]
    assert server.scalar("SELECT datallowconn FROM pg_database WHERE datname = 'app'") == "t"


def _databases(server) -> list[str]:
    return server.scalar("SELECT string_agg(datname, ' ' ORDER BY datname) FROM pg_database "
                         "WHERE datname LIKE 'app%'").split()


def _encoding(server) -> str:
    return server.scalar("SELECT pg_encoding_to_char(encoding) || ' ' || datcollate || ' ' || datctype "
                         "FROM pg_database WHERE datname = 'app'")


def test_in_place_import_keeps_encoding_locale_settings_comment_grants_and_owner(kroot, postgres_factory):
    server = postgres_factory(user="kompose", password="pw-inplace-1", database="app")
    server.sql("DROP DATABASE app", database="postgres")
    server.sql("CREATE DATABASE app TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C'",
               database="postgres")
    server.sql("CREATE ROLE owner_role LOGIN")
    _decorate(server, "owner_role")
    _stack(kroot, server, "kompose", "pw-inplace-1")
    assert kroot.run(kroot.name("db"), "db:export").code == 0
    server.sql("DELETE FROM t", database="app")
    # a setting the restore must not run under: it goes back only after the restore
    server.sql("ALTER DATABASE app SET default_transaction_read_only = on")
    before = _properties(server), _encoding(server)

    result = kroot.run(kroot.name("db"), "db:import", "--in-place")

    assert result.code == 0, result.output
    assert server.count("t", database="app") == 10
    assert (_properties(server), _encoding(server)) == before
    assert _encoding(server) == "LATIN1 C C"
    assert "warning" not in result.output
    assert _databases(server) == ["app"], "no holder database, no previous copy"


def test_failed_in_place_import_keeps_the_settings_and_drops_the_holder(kroot, postgres_factory):
    server = postgres_factory(user="kompose", password="pw-inplace-2", database="app")
    server.sql("CREATE ROLE owner_role LOGIN")
    _decorate(server, "owner_role")
    before = _properties(server)
    stack = _stack(kroot, server, "kompose", "pw-inplace-2")
    assert kroot.run(stack, "db:export").code == 0
    (dump,) = kroot.dir("db").glob("*.sql")
    # a dump that fails half-way through its restore (its checksum no longer matches: --force)
    text = dump.read_text().replace("COPY public.t", "COPY public.no_such_table")
    dump.write_text(text)

    result = kroot.run(stack, "db:import", "--in-place", "--force")

    assert result.code != 0, result.output
    assert _properties(server) == before
    assert _databases(server) == ["app"]


def test_next_run_puts_back_what_an_interrupted_in_place_import_held(kroot, postgres_factory):
    """What a kompose killed during an --in-place restore leaves: the live database without its
    properties, and the holder (refusing connections) with them."""
    server = postgres_factory(user="kompose", password="pw-inplace-3", database="app")
    server.sql("CREATE DATABASE app__kompose_tmp ALLOW_CONNECTIONS false")
    server.sql("COMMENT ON DATABASE app__kompose_tmp IS 'held'")
    server.sql("ALTER DATABASE app__kompose_tmp SET work_mem = '9MB'")
    stack = _stack(kroot, server, "kompose", "pw-inplace-3")

    result = kroot.run(stack, "db:export")

    assert result.code == 0, result.output
    assert ("put back the settings, comment, grants and owner of app (an interrupted --in-place import held them "
            "in app__kompose_tmp)") in result.output
    after = _properties(server)
    assert after["comment"] == "held" and after["settings"] == "*:work_mem=9MB"
    assert _databases(server) == ["app"]
