"""db:export's checks before pg_dump: one exec and one psql session when nothing needs repair;
the recovery of an interrupted import (admin connection) only when the check finds its leftovers,
or when the check cannot connect because a swap left the live database closed."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.docker

RECOVER_LINE = "check for leftovers of an interrupted import"


@pytest.fixture
def stack(kroot, postgres_factory):
    server = postgres_factory(user="kompose", password="pw-checks-1", database="app")
    server.sql("CREATE TABLE t (id int PRIMARY KEY)")
    server.sql("INSERT INTO t SELECT generate_series(1, 100)")
    name = kroot.stack("db", compose="services: {}\n",
                       env=f"DB_CONTAINER={server.container.name}\nDB_NAME=app\nDB_USER=kompose\n"
                           "DB_PASSWORD=pw-checks-1\n")
    return name, server


def _databases(server) -> set[str]:
    return set(server.sql("SELECT datname FROM pg_database", database="postgres").split())


def test_a_healthy_stack_runs_no_recovery(kroot, stack):
    name, server = stack
    result = kroot.run(name, "db:export")
    assert result.code == 0, result.output
    assert "check that the dump can be complete" in result.output
    assert RECOVER_LINE not in result.output
    assert "kompose:leftovers" not in result.output


def test_leftovers_found_by_the_check_are_cleaned_before_the_dump(kroot, stack):
    name, server = stack
    server.sql("CREATE DATABASE app__kompose_tmp", database="postgres")
    server.sql("CREATE DATABASE app__kompose_old", database="postgres")
    result = kroot.run(name, "db:export")
    assert result.code == 0, result.output
    assert "dropped the leftover temporary database app__kompose_tmp" in result.output, result.output
    assert "dropped app__kompose_old" in result.output
    assert "kompose:leftovers" not in result.output
    assert result.output.index(RECOVER_LINE) < result.output.index("pg_dump app")
    assert not {"app__kompose_tmp", "app__kompose_old"} & _databases(server)


def test_a_live_database_left_closed_without_a_mark_is_reopened_and_dumped(kroot, stack):
    name, server = stack
    server.sql("ALTER DATABASE app ALLOW_CONNECTIONS false", database="postgres")
    result = kroot.run(name, "db:export")
    assert result.code == 0, result.output
    assert "re-opened app for connections" in result.output, result.output
    assert server.sql("SELECT datallowconn FROM pg_database WHERE datname = 'app'", database="postgres") == "t"
