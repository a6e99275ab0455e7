"""The pure PostgreSQL builders: credentials, names, tool argv, the swap scripts."""

from __future__ import annotations

import re

import pytest

from kompose.engines.postgres import sql as postgres
from kompose.errors import ConfigError, NoDatabaseError

SECRET = "pw 'with' \"quotes\" ; $(rm -rf /)"
HOSTILE = 'x"; DROP DATABASE postgres; --\'s'
SCRIPTS = {name: getattr(postgres, name) for name in
           ("CREATE_TEMP", "DROP_TEMP", "CHECK_RIGHTS", "SWAP", "ROLLBACK", "RECREATE_IN_PLACE", "IN_PLACE_PROPERTIES",
            "RECOVER", "ABANDON", "REOPEN", "ANALYZE")}


def conn(database: str = "app", password: str = SECRET) -> postgres.Connection:
    return postgres.Connection(database, "kompose", password, "5432")


def all_argv(connection: postgres.Connection) -> list[tuple[str, ...]]:
    variables = postgres.variables(connection)
    return [
        postgres.pg_dump_argv(connection, "plain"),
        postgres.pg_dump_argv(connection, "custom"),
        postgres.restore_argv(connection, postgres.temp_name(connection.database), "plain"),
        postgres.restore_argv(connection, postgres.temp_name(connection.database), "custom"),
        postgres.psql_script_argv(connection, "postgres", variables),
    ]


def test_connection_from_the_layered_env():
    env = {"DB_NAME": "app", "DB_USER": "me", "DB_PASSWORD": "pw", "DB_PORT": "6543"}
    assert postgres.connection(env, "blog") == postgres.Connection("app", "me", "pw", "6543")
    assert postgres.connection({"DB_NAME": "app"}, "blog") == postgres.Connection("app", "postgres", "", "5432")


def test_connection_errors():
    with pytest.raises(NoDatabaseError, match="stack blog has no database"):
        postgres.connection({"DB_USER": "me"}, "blog")
    with pytest.raises(ConfigError, match="DB_PORT='54x2' is not a port number"):
        postgres.connection({"DB_NAME": "app", "DB_PORT": "54x2"}, "blog")


def test_password_only_in_the_exec_environment():
    connection = conn()
    assert connection.exec_env() == (("PGPASSWORD", SECRET),)
    assert conn(password="").exec_env() == ()
    for argv in all_argv(connection):
        assert not any(SECRET in word or "PGPASSWORD" in word for word in argv), argv
        assert "--no-password" in argv  # never a prompt: a wrong password fails at once
        assert "--host=127.0.0.1" in argv  # TCP, so the password is really checked


def test_tool_argv():
    connection = conn()
    assert postgres.pg_dump_argv(connection, "plain") == (
        "pg_dump", "--host=127.0.0.1", "--port=5432", "--username=kompose", "--no-password",
        "--lock-wait-timeout=180000", "--dbname=app")  # KOMPOSE_LOCK_WAIT's default: never wait without end
    assert postgres.pg_dump_argv(connection, "custom")[-1] == "--format=custom"
    plain = postgres.restore_argv(connection, "app__kompose_tmp", "plain")
    assert plain[0] == "psql" and "--set=ON_ERROR_STOP=1" in plain and plain[-1] == "--dbname=app__kompose_tmp"
    custom = postgres.restore_argv(connection, "app__kompose_tmp", "custom")
    assert custom[0] == "pg_restore" and "--exit-on-error" in custom and custom[-1] == "--dbname=app__kompose_tmp"


@pytest.mark.parametrize(
    "database, word",
    [
        ("my-app", "--dbname=my-app"),
        ("it's", "--dbname=it's"),
        ('say "hi"', '--dbname=say "hi"'),
        ("a=b", "--dbname=dbname='a=b'"),
        ("it's=1", "--dbname=dbname='it\\'s=1'"),
        ("back\\slash=", "--dbname=dbname='back\\\\slash='"),
        ("postgresql://host/x", "--dbname=dbname='postgresql://host/x'"),
    ],
)
def test_database_names_reach_the_tools_literally(database: str, word: str):
    assert postgres.pg_dump_argv(conn(database), "plain")[-1] == word
    assert postgres.restore_argv(conn(database), database, "custom")[-1] == word


def test_names_travel_as_psql_variables_never_in_the_scripts():
    connection = conn(HOSTILE)
    argv = postgres.psql_script_argv(connection, "postgres", postgres.variables(connection))
    assert f"--set=live={HOSTILE}" in argv
    assert f"--set=tmp={HOSTILE}__kompose_tmp" in argv and f"--set=prev={HOSTILE}__kompose_prev" in argv
    assert argv[-1] == "--file=-"
    for name, script in SCRIPTS.items():
        assert "x\"" not in script and "{" not in script.replace("'{}'", ""), name  # constants, nothing pasted
        # psql never substitutes variables inside dollar quotes: DO blocks must read them back
        for body in re.findall(r"\$(\w+)\$(.*?)\$\1\$", script, re.S):
            assert not re.search(r":['\"]\w", body[1]), f"{name}: psql variable inside a DO block"


def test_swap_renames_in_one_block_after_closing_the_live_database():
    swap = postgres.SWAP
    assert swap.index('ALTER DATABASE :"live" ALLOW_CONNECTIONS false') < swap.index("DO $swap$")
    block = swap[swap.index("DO $swap$"):swap.index("$swap$;")]
    assert block.count("RENAME TO") == 3  # prev -> old, live -> prev, tmp -> live
    # the session wait re-reads pg_stat_activity (inside a transaction it is a snapshot)
    assert block.index("pg_terminate_backend") < block.index("pg_stat_clear_snapshot()") < block.index("RENAME TO")
    # the copy the last import kept is not dropped by the swap: only a leftover :old, before the
    # close; the import drops it in the background once the new database is live (drop_old_statements)
    assert swap.count('DROP DATABASE IF EXISTS :"old"') == 1
    assert swap.index('DROP DATABASE IF EXISTS :"old"') < swap.index('ALTER DATABASE :"live" ALLOW_CONNECTIONS false')
    assert 'DROP DATABASE IF EXISTS :"prev"' not in swap and "WITH (FORCE)" not in swap
    assert "ALTER DATABASE :\"live\" ALLOW_CONNECTIONS true" in swap  # reopened when the swap fails


def test_every_clean_up_reopens_the_live_database_before_it_drops_anything():
    for script in (postgres.RECOVER, postgres.ABANDON):
        assert script.index('ALTER DATABASE :"live" ALLOW_CONNECTIONS true') < script.index("DROP DATABASE")


@pytest.mark.parametrize(
    "name, ok",
    [
        ("a" * 49, True),  # 49 + len("__kompose_prev") = 63 bytes
        ("a" * 50, False),
        ("é" * 24 + "a", True),  # 49 bytes
        ("é" * 25, False),  # 50 bytes in 25 characters
    ],
)
def test_names_too_long_with_the_suffix(name: str, ok: bool):
    if ok:
        assert postgres.connection({"DB_NAME": name}, "s").database == name
    else:
        with pytest.raises(ConfigError, match="too long.*64 bytes"):
            postgres.connection({"DB_NAME": name}, "s")


def test_failure_message_keeps_the_tools_last_words():
    stderr = (b"psql:<stdin>:5: ERROR:  no previous database x__kompose_prev to roll back to\n"
              b"CONTEXT:  PL/pgSQL function inline_code_block line 1 at RAISE\n")
    assert postgres.failure_message("psql (rollback)", 3, stderr, own_script=True) == (
        "psql (rollback) failed (exit 3): ERROR:  no previous database x__kompose_prev to roll back to")
    # a user's script keeps where psql stopped (SQL hooks map it to their file and line)
    assert postgres.failure_message("psql", 3, stderr).startswith("psql failed (exit 3): psql:<stdin>:5: ERROR:")
    many = b"\n".join(f"line {i}".encode() for i in range(10)) + b"\n\n"
    assert postgres.failure_message("pg_dump", 1, many) == "pg_dump failed (exit 1): line 7 | line 8 | line 9"
    assert postgres.failure_message("pg_dump", 1, b"") == "pg_dump failed (exit 1): no error output"
    assert "\ufffd" in postgres.failure_message("pg_dump", 1, b"bad \xff byte")


def test_the_background_drop_of_the_old_copy_quotes_its_name_as_psql_would():
    old = postgres.old_name(HOSTILE)
    statements = postgres.drop_old_statements(old)
    quoted = '"' + old.replace('"', '""') + '"'
    assert statements[-1] == f"DROP DATABASE IF EXISTS {quoted}"
    assert "'" + old.replace("'", "''") + "'" in statements[1]
    assert "WITH (FORCE)" not in "".join(statements)
    argv = postgres.psql_commands_argv(postgres.Connection("app", "u", "pw", "5432"), "postgres", statements)
    assert "--file=-" not in argv and argv[-3:] == tuple(f"--command={s}" for s in statements)
    assert "pw" not in " ".join(argv)


def test_the_swap_session_starts_the_drop_detached_with_every_word_quoted_for_sh():
    import shlex

    statements = postgres.drop_old_statements(postgres.old_name(HOSTILE))
    argv = postgres.psql_commands_argv(postgres.Connection("app", "u", "pw", "5432", host=""), "postgres", statements)
    lines = postgres.detach_from_script(argv).splitlines()
    # the shell's answer can never fail the swap's script: ON_ERROR_STOP goes off first
    assert lines[0] == "\\set ON_ERROR_STOP 0"
    assert lines[1].startswith("\\! ") and len(lines) == 2
    words = shlex.split(lines[1][3:])
    # sh sees exactly the argv, then the redirections and the & that detach it
    assert tuple(words[:len(argv)]) == argv
    assert words[len(argv):] == ["</dev/null", ">/dev/null", "2>&1", "&"]
