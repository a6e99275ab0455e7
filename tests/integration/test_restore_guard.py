"""Whatever a dump contains, an import only ever touches the temporary database.

A plain dump is a psql script: ``pg_dump --clean --create`` writes DROP DATABASE, CREATE
DATABASE and \\connect; a hostile file can run shell commands through psql. kompose
neutralises what pg_dump --create writes (the restore stays in the temporary database),
refuses everything else a pg_dump file never holds, and checks that the temporary database
holds every table the dump has data for before it swaps (docs/reliability.md).
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.docker

PASSWORD = "pw-guard-1"
STAMP = "20260101_000000"


def _server(postgres_factory):
    server = postgres_factory(user="kompose", password=PASSWORD, database="app")
    server.sql("COMMENT ON DATABASE app IS 'the live one'")
    server.sql("CREATE TABLE t (id int PRIMARY KEY, v text)", database="app")
    server.sql("INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 50) g", database="app")
    return server


def _stack(kroot, server) -> str:
    return kroot.stack("db", compose="services: {}\n",
                       env=f"DB_CONTAINER={server.container.name}\nDB_NAME=app\nDB_USER=kompose\n"
                           f"DB_PASSWORD={PASSWORD}\n")


def _pg_dump(server, *args: str, database: str = "app") -> bytes:
    code, output = server.container.exec_run(["pg_dump", "-U", "kompose", *args, database], demux=True)
    assert code == 0, output
    return output[0]


def _databases(server) -> list[str]:
    return server.scalar("SELECT string_agg(datname, ' ' ORDER BY datname) FROM pg_database "
                         "WHERE NOT datistemplate AND datname <> 'postgres'").split()


@pytest.mark.parametrize("fmt", ["plain", "custom"])
def test_a_clean_create_dump_of_the_same_database_restores_into_the_temporary_one(kroot, postgres_factory, fmt):
    server = _server(postgres_factory)
    name = _stack(kroot, server)
    dump = kroot.dir("db") / (f"app_{STAMP}.sql" if fmt == "plain" else f"app_{STAMP}.dump")
    dump.write_bytes(_pg_dump(server, "--clean", "--create", *(["--format=custom"] if fmt == "custom" else [])))
    # written after the dump: must survive in the previous copy, never be lost
    server.sql("INSERT INTO t SELECT g, 'late ' || g FROM generate_series(51, 60) g", database="app")

    result = kroot.run(name, "db:import", dump.name)

    assert result.code == 0, result.output
    assert server.count("t", database="app") == 50  # the dump's rows, in the swapped-in copy
    assert server.count("t", database="app__kompose_prev") == 60  # the live rows, kept for a rollback
    assert server.scalar("SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                         "WHERE datname = 'app'") == "the live one"
    assert _databases(server) == ["app", "app__kompose_prev"]
    if fmt == "plain":
        assert "neutralised" in result.output and "DROP DATABASE" in result.output, result.output
    assert kroot.run(name, "db:rollback").code == 0
    assert server.count("t", database="app") == 60


def test_a_create_dump_of_another_database_under_this_ones_name_is_refused(kroot, postgres_factory):
    server = _server(postgres_factory)
    server.create_database("other")
    server.sql("CREATE TABLE o (id int)", database="other")
    server.sql("INSERT INTO o VALUES (1), (2)", database="other")
    name = _stack(kroot, server)
    dump = kroot.dir("db") / f"app_{STAMP}.sql"
    dump.write_bytes(_pg_dump(server, "--clean", "--create", database="other"))

    result = kroot.run(name, "db:import", dump.name)

    assert result.code == 1
    assert "is a dump of database other, not app" in result.output, result.output
    assert "Traceback" not in result.output
    assert server.count("t", database="app") == 50  # live untouched
    assert server.count("o", database="other") == 2  # and so is the other database
    assert _databases(server) == ["app", "other"]
    # asked for, it restores into the temporary database and swaps it in; other stays as it was
    result = kroot.run(name, "db:import", dump.name, "--allow-other-database")
    assert result.code == 0, result.output
    assert server.count("o", database="app") == 2
    assert server.count("t", database="app__kompose_prev") == 50
    assert server.count("o", database="other") == 2


@pytest.mark.parametrize("line, what", [
    ("\\! touch /tmp/kompose-pwned", "\\! touch"),
    ("\\o | touch /tmp/kompose-pwned", "\\o |"),
    ("\\copy t FROM PROGRAM 'touch /tmp/kompose-pwned'", "\\copy"),
    ("COPY t FROM PROGRAM 'touch /tmp/kompose-pwned';", "COPY … PROGRAM"),
    ("\\connect postgres", "a second \\connect"),
], ids=["shell", "pipe", "copy-program", "server-program", "connect-elsewhere"])
def test_a_dump_that_would_run_commands_is_refused_and_the_live_database_untouched(kroot, postgres_factory, line,
                                                                                     what):
    server = _server(postgres_factory)
    name = _stack(kroot, server)
    plain = _pg_dump(server, "--create")
    marker = b"SET default_tablespace = '';\n"
    assert marker in plain
    dump = kroot.dir("db") / f"app_{STAMP}.sql"
    dump.write_bytes(plain.replace(marker, marker + line.encode() + b"\n", 1))
    server.sql("INSERT INTO t VALUES (99, 'late')", database="app")

    result = kroot.run(name, "db:import", dump.name)

    assert result.code == 1, result.output
    assert what in result.output and "kompose does not restore it" in result.output, result.output
    assert "Traceback" not in result.output
    assert server.exec(["test", "-e", "/tmp/kompose-pwned"])[0] != 0, "a command of the dump ran"
    assert server.count("t", database="app") == 51
    assert _databases(server) == ["app"]


def test_psql_in_restrict_mode_refuses_meta_commands(postgres_factory):
    """The guard's backstop: kompose starts every guarded restore with ``\\restrict <random key>``
    (tests/unit/test_plain_sql.py), and this psql then runs no meta-command at all."""
    import subprocess

    from kompose.dumps import plain_guard

    server = _server(postgres_factory)
    code, version = server.exec(["psql", "--version"])
    assert plain_guard.psql_has_restrict(version), version  # PostgreSQL 15.18 here
    script = b"\\restrict abc123\nSELECT 1;\n\\! touch /tmp/kompose-pwned\n"
    proc = subprocess.run(["docker", "exec", "-i", server.container.name, "psql", "-U", "kompose", "-d", "app",
                           "-X", "-v", "ON_ERROR_STOP=1"], input=script, capture_output=True)
    assert proc.returncode != 0 and b"restricted" in proc.stderr
    assert server.exec(["test", "-e", "/tmp/kompose-pwned"])[0] != 0


def test_a_restore_that_leaves_a_table_out_is_never_swapped_in(kroot, postgres_factory):
    server = _server(postgres_factory)
    name = _stack(kroot, server)
    plain = _pg_dump(server)
    end = b"--\n-- PostgreSQL database dump complete\n--\n"
    assert end in plain
    dump = kroot.dir("db") / f"app_{STAMP}.sql"
    dump.write_bytes(plain.replace(end, b"DROP TABLE public.t;\n\n" + end))

    result = kroot.run(name, "db:import", dump.name)

    assert result.code == 1, result.output
    assert "app__kompose_tmp lacks 1 table(s)" in result.output and "public.t" in result.output, result.output
    assert server.count("t", database="app") == 50
    assert _databases(server) == ["app"]
