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


def test_app_role_import_copies_what_it_may_and_names_the_rest(kroot, postgres_factory):
    server = postgres_factory(user="kompose", password="pw-super-2", database="app")
    server.sql("CREATE ROLE app_owner LOGIN CREATEDB PASSWORD 'pw-app-2'")
    _decorate(server, "app_owner")
    server.sql("ALTER TABLE t OWNER TO app_owner", database="app")
    before = _properties(server)
    _stack(kroot, server, "app_owner", "pw-app-2")

    assert kroot.run(kroot.name("db"), "db:export").code == 0
    result = kroot.run(kroot.name("db"), "db:import")

    assert result.code == 0, result.output
    after = _properties(server)
    assert after["comment"] == before["comment"]
    assert after["acl"] == before["acl"]
    assert after["owner"] == "app_owner"
    assert "work_mem=7MB" in after["settings"] and "odd" in after["settings"]
    # another role's per-database setting needs a superuser: not copied, and said so
    assert "statement_timeout" not in after["settings"]
    assert "warning: not allowed to carry over" in result.output and "statement_timeout" in result.output
    assert "pw-app-2" not in result.output
