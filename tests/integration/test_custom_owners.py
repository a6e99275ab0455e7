"""--format custom restores exactly as plain does: every object keeps its owner.

The app's objects (schema, tables, sequences, a SECURITY DEFINER function, a type, a large
object) belong to an app role, as in a real deployment; kompose connects as a superuser.
After db:import the owners are the same and the app role can still write its tables. A
DB_USER that may not give objects to their owners is refused with one line, live untouched.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.docker

OWNERS = """
SELECT 'schema ' || nspname || ' ' || pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'shop'
UNION ALL
SELECT c.relkind::text || ' ' || c.relname || ' ' || pg_get_userbyid(c.relowner) FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN ('shop', 'public') AND c.relkind IN ('r', 'S', 'v')
UNION ALL
SELECT 'function ' || p.proname || ' ' || pg_get_userbyid(p.proowner) || ' definer=' || p.prosecdef
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'shop'
UNION ALL
SELECT 'type ' || t.typname || ' ' || pg_get_userbyid(t.typowner) FROM pg_type t
  JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = 'shop' AND t.typtype = 'e'
UNION ALL
SELECT 'large object ' || pg_get_userbyid(lomowner) FROM pg_largeobject_metadata
ORDER BY 1
"""


def _app_database(server) -> None:
    server.sql("CREATE ROLE shop_owner LOGIN PASSWORD 'pw-shop-owner'")
    server.sql("GRANT CREATE ON DATABASE app TO shop_owner")
    for statement in [
        "CREATE SCHEMA shop",
        "CREATE TYPE shop.state AS ENUM ('new', 'paid')",
        "CREATE TABLE shop.orders (id serial PRIMARY KEY, state shop.state NOT NULL DEFAULT 'new', note text)",
        "CREATE VIEW shop.paid AS SELECT * FROM shop.orders WHERE state = 'paid'",
        "CREATE FUNCTION shop.whoami() RETURNS text LANGUAGE sql SECURITY DEFINER AS $$ SELECT current_user::text $$",
        "INSERT INTO shop.orders (note) SELECT 'order ' || g FROM generate_series(1, 20) g",
        "SELECT lo_from_bytea(0, 'an invoice')",
    ]:
        server.sql(statement, database="app", user="shop_owner")


def _stack(kroot, server, user: str, password: str) -> str:
    return kroot.stack("db", compose="services: {}\n",
                       env=f"DB_CONTAINER={server.container.name}\nDB_NAME=app\nDB_USER={user}\n"
                           f"DB_PASSWORD={password}\nKOMPOSE_EXPORT_FORMAT=custom\n")


def test_custom_import_keeps_every_owner_and_the_app_can_write(kroot, postgres_factory):
    server = postgres_factory(user="kompose", password="pw-owners-1", database="app")
    _app_database(server)
    before = server.sql(OWNERS, database="app")
    assert "shop_owner" in before and "definer=true" in before
    name = _stack(kroot, server, "kompose", "pw-owners-1")
    assert kroot.run(name, "db:export").code == 0
    assert list(kroot.dir("db").glob("app_*.dump"))

    result = kroot.run(name, "db:import")

    assert result.code == 0, result.output
    assert server.sql(OWNERS, database="app") == before
    assert "postgres" not in server.sql(OWNERS, database="app") and "kompose" not in server.sql(OWNERS, "app")
    # the app role writes its own tables and its sequence; its definer function runs as itself
    server.sql("INSERT INTO shop.orders (note) VALUES ('after the restore')", database="app", user="shop_owner")
    assert server.scalar("SELECT count(*) FROM shop.orders", database="app") == "21"
    assert server.scalar("SELECT shop.whoami()", database="app") == "shop_owner"


def test_a_db_user_that_cannot_set_the_owners_is_refused_with_what_to_grant(kroot, postgres_factory):
    server = postgres_factory(user="kompose", password="pw-owners-2", database="app")
    _app_database(server)
    server.sql("CREATE ROLE operator LOGIN CREATEDB PASSWORD 'pw-operator'")
    server.sql("GRANT pg_read_all_data TO operator")
    server.sql("ALTER DATABASE app OWNER TO operator")
    name = _stack(kroot, server, "kompose", "pw-owners-2")
    assert kroot.run(name, "db:export").code == 0
    before = server.sql(OWNERS, database="app")
    _stack(kroot, server, "operator", "pw-operator")

    result = kroot.run(name, "db:import")

    assert result.code == 1, result.output
    assert "GRANT each owning role to DB_USER" in result.output, result.output
    assert "kompose never re-owns objects" in result.output
    assert "Traceback" not in result.output
    assert server.sql(OWNERS, database="app") == before
    assert server.scalar("SELECT count(*) FROM shop.orders", database="app") == "20"
    assert server.scalar("SELECT count(*) FROM pg_database WHERE datname LIKE 'app\\_\\_%'") == "0"
