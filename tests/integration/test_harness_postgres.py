"""The PostgreSQL fixtures later tests rely on: SQL over the local socket, checksums, compose lookup."""

from __future__ import annotations

import subprocess

from tests.helpers import APP_IMAGE, PG_IMAGE, Postgres, SqlError


def test_pg_runs_sql_and_checksums_ignore_row_order(pg: Postgres):
    pg.sql("CREATE TABLE t (id int PRIMARY KEY, name text)")
    pg.sql("INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, NULL)")
    assert pg.count("t") == 3
    assert pg.rows("SELECT id, name FROM t ORDER BY id") == [("1", "a"), ("2", "b"), ("3", "")]
    before = pg.checksum("t")
    assert before.startswith("3:")

    pg.sql("CREATE TABLE u AS SELECT * FROM t ORDER BY id DESC")
    assert pg.checksum("u") == before
    pg.sql("UPDATE u SET name = 'B' WHERE id = 2")
    assert pg.checksum("u") != before
    assert pg.checksums() == {"t": before, "u": pg.checksum("u")}

    try:
        pg.sql("SELECT * FROM missing_table")
    except SqlError as exc:
        assert "missing_table" in str(exc)
    else:
        raise AssertionError("SqlError expected")


def test_pg_databases_are_fresh_per_test(pg: Postgres):
    assert pg.database in pg.databases()
    assert pg.tables() == []


def test_postgres_from_a_compose_stack(kroot, docker_client):
    stack = kroot.stack(
        "pgstack",
        compose=f"""
            services:
              db:
                image: {PG_IMAGE}
                pull_policy: never
                environment:
                  POSTGRES_USER: blog
                  POSTGRES_PASSWORD: blog-password
                  POSTGRES_DB: blogdb
                tmpfs: [/var/lib/postgresql/data]
              app:
                image: {APP_IMAGE}
                pull_policy: never
        """,
    )
    # plain docker compose: this checks the harness, not kompose
    up = subprocess.run(["docker", "compose", "up", "-d", "--quiet-pull"], cwd=kroot.dir("pgstack"),
                        stdin=subprocess.DEVNULL, capture_output=True, text=True)
    assert up.returncode == 0, up.stderr
    db = Postgres.from_compose(docker_client, stack, "db").wait_ready()
    assert (db.user, db.database, db.password) == ("blog", "blogdb", "blog-password")
    assert db.scalar("SELECT current_database()") == "blogdb"
