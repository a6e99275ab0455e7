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


@pytest.mark.parametrize("transport", ["direct", "exec"])
def test_leftovers_found_by_the_check_are_cleaned_before_the_dump(kroot, stack, transport):
    name, server = stack
    server.sql("CREATE DATABASE app__kompose_tmp", database="postgres")
    server.sql("CREATE DATABASE app__kompose_old", database="postgres")
    result = kroot.run(name, "db:export", "--transport", transport)
    assert ("the check beside it did not pass" in result.output) == (transport == "exec"), result.output
    assert result.code == 0, result.output
    assert "dropped the leftover temporary database app__kompose_tmp" in result.output, result.output
    assert "dropped app__kompose_old" in result.output
    assert "kompose:leftovers" not in result.output
    # a dump beside the check (the exec transport) is thrown away: the one kept ran after the clean-up
    assert result.output.index(RECOVER_LINE) < result.output.rindex("pg_dump app")
    assert not {"app__kompose_tmp", "app__kompose_old"} & _databases(server)


def test_a_live_database_left_closed_without_a_mark_is_reopened_and_dumped(kroot, stack):
    name, server = stack
    server.sql("ALTER DATABASE app ALLOW_CONNECTIONS false", database="postgres")
    result = kroot.run(name, "db:export")
    assert result.code == 0, result.output
    assert "re-opened app for connections" in result.output, result.output
    assert server.sql("SELECT datallowconn FROM pg_database WHERE datname = 'app'", database="postgres") == "t"


def _execs(container: str, since: float, until: float) -> list[str]:
    import subprocess

    out = subprocess.run(["docker", "events", "--since", f"{since:.6f}", "--until", f"{until:.6f}", "--filter",
                          f"container={container}", "--filter", "event=exec_start", "--format", "{{.Action}}"],
                         capture_output=True, text=True, check=True).stdout
    # an action spans lines when its argv does (a script): split on the event's own name
    return [event for event in out.split("exec_start:")[1:]]


def test_a_healthy_export_checks_and_dumps_in_one_exec(kroot, stack):
    import time

    name, server = stack
    since = time.time()
    result = kroot.run(name, "db:export", "--transport", "exec")
    until = time.time() + 0.5
    assert result.code == 0, result.output
    assert result.output.index("check that the dump can be complete") < result.output.index("pg_dump app")
    execs = _execs(server.container.name, since, until)
    assert len(execs) == 1, execs
    assert "psql" in execs[0] and "pg_dump" in execs[0]


def test_a_check_that_fails_in_the_shared_exec_reports_as_alone(kroot, stack):
    """Row-level security hides rows: what pg_dump streamed beside the check is thrown away, it is not
    run again, and the check's own error is the message."""
    name, server = stack
    server.sql("CREATE ROLE reader LOGIN PASSWORD 'pw-checks-2'", database="postgres")
    server.sql("GRANT SELECT ON t TO reader")
    server.sql("ALTER TABLE t ENABLE ROW LEVEL SECURITY")
    env = kroot.path / name / ".env"
    env.write_text(env.read_text().replace("DB_USER=kompose\nDB_PASSWORD=pw-checks-1", "DB_USER=reader\nDB_PASSWORD=pw-checks-2"))
    result = kroot.run(name, "db:export", "--transport", "exec")
    assert result.code != 0, result.output
    assert "row-level security applies to DB_USER reader" in result.output, result.output
    assert "the check beside it did not pass" in result.output
    assert result.output.count("pg_dump app") == 1, result.output
    assert not list((kroot.path / name).glob("app_*.sql*"))
