"""FORCE ROW LEVEL SECURITY on the owner's table never yields a dump with rows left out.

pg_dump runs with row_security off: when a policy would hide rows from DB_USER it fails on
that table. kompose refuses before pg_dump with one line naming the tables and the remedy,
leaves no file, and exports completely once DB_USER bypasses row-level security.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.docker


def test_force_rls_is_refused_with_the_table_and_the_remedy_then_exports_completely(kroot, postgres_factory):
    server = postgres_factory(user="kompose", password="pw-rls-super", database="app")
    server.sql("CREATE ROLE app_owner LOGIN CREATEDB PASSWORD 'pw-rls-owner'")
    server.sql("ALTER DATABASE app OWNER TO app_owner")
    for statement in [
        "CREATE TABLE notes (id int PRIMARY KEY, private boolean NOT NULL)",
        "INSERT INTO notes SELECT g, g % 2 = 0 FROM generate_series(1, 10) g",
        "ALTER TABLE notes ENABLE ROW LEVEL SECURITY",
        "ALTER TABLE notes FORCE ROW LEVEL SECURITY",
        "CREATE POLICY public_only ON notes USING (NOT private)",
        "CREATE TABLE plain_table (id int)",
    ]:
        server.sql(statement, database="app", user="app_owner")
    assert server.sql("SELECT count(*) FROM notes", database="app", user="app_owner") == "5"  # hidden rows
    name = kroot.stack("db", compose="services: {}\n",
                       env=f"DB_CONTAINER={server.container.name}\nDB_NAME=app\nDB_USER=app_owner\n"
                           "DB_PASSWORD=pw-rls-owner\n")

    result = kroot.run(name, "db:export")

    assert result.code == 1, result.output
    assert "row-level security applies to DB_USER app_owner on public.notes" in result.output, result.output
    assert "BYPASSRLS" in result.output and "Traceback" not in result.output
    assert "pw-rls-owner" not in result.output
    assert not [p.name for p in kroot.dir("db").iterdir() if p.name.startswith("app_")]  # no file at all

    server.sql("ALTER ROLE app_owner BYPASSRLS")
    result = kroot.run(name, "db:export")
    assert result.code == 0, result.output
    server.sql("DELETE FROM notes", database="app")  # as the superuser: every row
    result = kroot.run(name, "db:import")
    assert result.code == 0, result.output
    assert server.scalar("SELECT count(*) FROM notes", database="app") == "10"
