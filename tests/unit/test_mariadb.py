"""The MariaDB engine's pure builders: argv, names, the end marker, the swap scripts."""

from __future__ import annotations

import subprocess

import pytest

from kompose.engines.mariadb import sql as mariadb
from kompose.errors import ConfigError, NoDatabaseError

CANARY = "canary-pw-5e1f"


def conn(**overrides) -> mariadb.Connection:
    env = {"DB_NAME": "press", "DB_USER": "press", "DB_PASSWORD": CANARY, **overrides}
    return mariadb.connection(env, "press")


def test_the_password_travels_in_the_environment_never_in_argv():
    c = conn()
    assert c.exec_env() == (("MYSQL_PWD", CANARY),)
    for argv in (mariadb.dump_argv(c), mariadb.client_argv(c, "press"), mariadb.swap_argv(c),
                 mariadb.rollback_argv(c), mariadb.recover_argv(c), mariadb.abandon_argv(c),
                 mariadb.create_temp_argv(c), mariadb.drop_argv(c, "x")):
        assert not any(CANARY in part for part in argv), argv[0]


def test_the_root_password_of_the_images_wins_over_the_app_user():
    c = conn(MARIADB_ROOT_PASSWORD="root-pw")
    assert (c.user, c.password) == ("root", "root-pw")
    assert conn(MYSQL_ROOT_PASSWORD="r2").password == "r2"
    assert (conn().user, conn().password) == ("press", CANARY)


def test_dump_argv_is_a_consistent_dump_with_every_object():
    argv = mariadb.dump_argv(conn())
    assert argv[0] == "mariadb-dump"
    for flag in ("--single-transaction", "--routines", "--triggers", "--events", "--hex-blob",
                 "--default-character-set=utf8mb4", "--protocol=tcp", "--host=127.0.0.1", "--user=press"):
        assert flag in argv
    # no --databases: no CREATE DATABASE / USE, so the dump restores into the temporary database
    assert "--databases" not in argv and argv[-2:] == ("--", "press")


def test_mysql_flavour_uses_mysqls_tools():
    c = mariadb.connection({"DB_NAME": "app"}, "s", flavour="mysql")
    assert mariadb.dump_argv(c)[0] == "mysqldump" and mariadb.client_argv(c)[0] == "mysql"
    assert c.port == "3306" and c.user == "root"


@pytest.mark.parametrize("name, problem", [
    ("", NoDatabaseError), ("a/b", ConfigError), ("a\nb", ConfigError), ("-x", ConfigError),
    ("x ", ConfigError), ("x" * 51, ConfigError),
])
def test_names_mariadb_or_a_file_name_cannot_carry_are_refused(name, problem):
    with pytest.raises(problem):
        conn(DB_NAME=name)


def test_a_name_of_50_characters_fits_with_the_suffix():
    assert conn(DB_NAME="x" * 50).database == "x" * 50


def test_identifiers_and_literals_are_quoted():
    assert mariadb.ident("we`ird") == "`we``ird`"
    assert mariadb.literal("o'b\\x") == "'o\\'b\\\\x'"


@pytest.mark.parametrize("tail, complete", [
    (b"INSERT ...;\n/*!40111 SET SQL_NOTES=@OLD_SQL_NOTES */;\n\n-- Dump completed on 2026-12-01 16:21:43\n", True),
    (b"...\n-- Dump completed\n", True),
    (b"INSERT INTO t VALUES (1),(2", False),
    (b"-- Dump completed on 2026\nINSERT INTO t VALUES (1);\n", False),
])
def test_complete_only_with_the_end_marker_last(tail, complete):
    assert (mariadb.ending_problem(tail) is None) is complete


def test_the_dump_banner_is_recognised():
    assert mariadb.is_dump(b"/*M!999999\\- enable the sandbox mode */ \n-- MariaDB dump 10.19")
    assert mariadb.is_dump(b"-- MySQL dump 10.13  Distrib 8.0")
    assert not mariadb.is_dump(b"--\n-- PostgreSQL database dump\n")


def test_the_swap_renames_every_table_in_one_statement():
    script = mariadb.swap_argv(conn())[2]
    # generated client-side from information_schema (MySQL has no anonymous compound statement),
    # then run in the session that dropped the triggers
    assert script.count("'RENAME TABLE '") == 1 and "GROUP_CONCAT(m ORDER BY o, n" in script
    assert '"$lock" "$triggers" "$blocking" "$rename" | sq' in script
    assert "NOT ATOMIC" not in script and "EXECUTE IMMEDIATE" not in script
    # the live tables go to prev before the restored ones come in (one ordered list)
    assert "SELECT 1 AS o" in script and "SELECT 2 AS o" in script and "SELECT 3 AS o" not in script
    assert "`press__kompose_prev`" in script and "`press__kompose_tmp`" in script


def test_the_previous_copy_leaves_only_in_the_swaps_rename():
    """Issue 21: the copy the previous import kept is never dropped before the RENAME: its tables go
    first to <db>__kompose_old in that one statement, which is dropped only after it."""
    script = mariadb.swap_argv(conn())[2]
    assert "SELECT 0 AS o" in script and "'`press__kompose_old`'" in script
    rename = script.index('"$rename" | sq')
    assert "DROP DATABASE `press__kompose_prev`" not in script
    assert "DROP DATABASE IF EXISTS `press__kompose_prev`;" not in script[:rename]
    assert script.index("DROP DATABASE `press__kompose_old`") > rename
    assert "dropped press__kompose_old" in mariadb.recover_argv(conn())[2]


def test_the_rollback_rotates_through_the_temporary_database_in_the_same_statement():
    script = mariadb.rollback_argv(conn())[2]
    assert script.count("'RENAME TABLE '") == 1 and "SELECT 3 AS o" in script
    assert "no previous database press__kompose_prev" in script


@pytest.mark.parametrize("build", [mariadb.swap_argv, mariadb.rollback_argv, mariadb.recover_argv,
                                   mariadb.create_temp_argv, mariadb.empty_argv,
                                   lambda c: mariadb.row_counts_argv(c, c.database)])
@pytest.mark.parametrize("name", ["press", "we'ird `name` $(touch x) ;;"])
def test_the_scripts_are_valid_shell_whatever_the_name(build, name):
    argv = build(conn(DB_NAME=name))
    assert argv[:2] == ("sh", "-c")
    done = subprocess.run(["sh", "-n", "-c", argv[2]], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_a_failure_is_the_error_line_and_what_kompose_says_it_means():
    from kompose.engines.mariadb import ENGINE

    stderr = (b"--------------\nRENAME TABLE `a`.`t` TO `b`.`t`\n--------------\n\n"
              b"ERROR 1205 (HY000) at line 50: Lock wait timeout exceeded\nthe swap failed; press is unchanged\n")
    assert ENGINE.failure_message("sh", 1, stderr) == (
        "sh failed (exit 1): ERROR 1205 (HY000) at line 50: Lock wait timeout exceeded | "
        "the swap failed; press is unchanged")
    assert ENGINE.failure_message("mariadb", 1, b"") == "mariadb failed (exit 1): no error output"


# --- MySQL: the tool names and the detection (the real server: tests/integration/test_mariadb.py,
# parametrised over kompose/mariadb and kompose/mysql)


class _FakeContainer:
    def __init__(self, image: str, env: list[str]):
        self.attrs = {"Config": {"Image": image, "Env": env}}


@pytest.mark.parametrize("image, env, engine", [
    ("mysql:8.0", ["MYSQL_ROOT_PASSWORD=x", "MYSQL_MAJOR=8.0"], "mysql"),
    ("mysql:8.4-oracle", [], "mysql"),
    ("registry.example/app-db:3", ["MYSQL_DATABASE=app"], "mysql"),
    ("mariadb:11.4", ["MARIADB_ROOT_PASSWORD=x"], "mariadb"),
    ("kompose/mariadb:10.11", [], "mariadb"),
    ("registry.example/db:1", ["MARIADB_MAJOR=11.4"], "mariadb"),
    ("postgres:16", ["POSTGRES_PASSWORD=x"], "postgres"),
    ("redis:7", ["REDIS_VERSION=7"], ""),
])
def test_the_server_is_told_by_the_image_and_its_variables(image, env, engine):
    from kompose.docker.containers import server_engine

    assert server_engine(_FakeContainer(image, env)) == engine


def _plan_ctx(tmp_path, env_text: str, engine: str = "mysql", image: str = "mysql:8.0"):
    import io

    from kompose.console import Console
    from kompose.context import Context, Options
    from kompose.plan.steps import Container
    from kompose.stacks import discover

    root = tmp_path / "root"
    (root / "shop").mkdir(parents=True)
    (root / "shop" / "compose.yaml").write_text("services: {}\n")
    (root / "shop" / ".env").write_text(env_text)
    found = Container("c0ffee", "shop-db-1", image, "injected for the test", engine=engine)
    ctx = Context(Options(root=root, dry_run=True), Console(out=io.StringIO(), err=io.StringIO()),
                  process_env={"PATH": "/usr/bin:/bin"}, find_container=lambda ctx, stack, env: found)
    (stack,) = discover(root)
    return ctx, stack


def _text(ctx, stack_plan) -> str:
    from kompose.plan.model import Plan
    from kompose.plan.render import render_text

    ctx.console.add_secrets([CANARY])
    return render_text(Plan(stack_plan.command, [stack_plan]))


@pytest.mark.parametrize("env_text", [
    f"DB_NAME=shop\nMYSQL_ROOT_PASSWORD={CANARY}\n",  # detected from the container (a mysql:8 image)
    f"DB_NAME=shop\nDB_ENGINE=mysql\nDB_PASSWORD={CANARY}\n",  # said in the .env
])
def test_a_mysql_stack_exports_with_mysqldump_and_the_mysql_client(tmp_path, env_text):
    from kompose.actions import db_export

    ctx, stack = _plan_ctx(tmp_path, env_text)
    stack_plan = db_export.plan(ctx, stack)
    text = _text(ctx, stack_plan)
    assert "engine mysql" in text and "mysqldump" in text and "mariadb-dump" not in text
    dump = next(step for step in stack_plan.steps if getattr(step, "stdout_file", None))
    assert dump.argv[0] == "mysqldump" and "--single-transaction" in dump.argv
    recover = next(step for step in stack_plan.steps if getattr(step, "argv", ("",))[0] == "sh")
    assert "q() { mysql " in recover.argv[2] and "mariadb " not in recover.argv[2]
    assert CANARY not in text and all(CANARY not in " ".join(getattr(s, "argv", ())) for s in stack_plan.steps)


@pytest.mark.parametrize("command", ["db:import", "db:rollback", "db:drill"])
def test_a_mysql_stack_plans_import_rollback_and_drill_with_mysqls_tools(tmp_path, command):
    from kompose.actions import db_drill, db_import, db_rollback

    ctx, stack = _plan_ctx(tmp_path, f"DB_NAME=shop\nDB_ENGINE=mysql\nMYSQL_ROOT_PASSWORD={CANARY}\n")
    (stack.dir / "shop_20261201_120000.sql").write_text("-- MySQL dump 10.13  Distrib 9.7.4\n-- Dump completed\n")
    action = {"db:import": db_import, "db:rollback": db_rollback, "db:drill": db_drill}[command]
    stack_plan = action.plan(ctx, stack)
    text = _text(ctx, stack_plan)
    assert "engine mysql" in text and CANARY not in text
    scripts = [step.argv[2] for step in stack_plan.steps if getattr(step, "argv", ("",))[0] == "sh"]
    assert scripts and all("q() { mysql " in script and "mariadb" not in script for script in scripts)
    assert not any("NOT ATOMIC" in script or "EXECUTE IMMEDIATE" in script for script in scripts)
    if command != "db:drill":
        assert sum(script.count("'RENAME TABLE '") for script in scripts) == 1


def test_a_mariadb_stack_plans_its_drill_and_in_place_import(tmp_path):
    from kompose.actions import db_drill, db_import

    ctx, stack = _plan_ctx(tmp_path, f"DB_NAME=shop\nMARIADB_ROOT_PASSWORD={CANARY}\n", "mariadb",
                           "mariadb:11.4")
    (stack.dir / "shop_20261201_120000.sql").write_text("-- MariaDB dump 10.19  Distrib 10.11.14-MariaDB\n"
                                                        "-- Dump completed on 2026-12-01\n")
    drill_plan = db_drill.plan(ctx, stack)
    drill, whats = _text(ctx, drill_plan), [getattr(step, "what", "") for step in drill_plan.steps]
    assert "shop__kompose_drill" in drill and "each with the rows its INSERT statements hold" in drill
    assert "create the drill database shop__kompose_drill (the character set and collation of shop)" in whats
    assert whats[-2:] == ["drop the drill database shop__kompose_drill", ""]  # then the record
    assert [getattr(step, "what", "") for step in drill_plan.on_failure][0] == whats[-2]
    import_plan = db_import.plan(ctx, stack, in_place=True)
    in_place, whats = _text(ctx, import_plan), [getattr(step, "what", "") for step in import_plan.steps]
    assert whats[-2].startswith("empty shop: drop its tables") and whats[-1].endswith("into shop")
    assert "--in-place: the live database is emptied before the restore" in in_place
    assert not any("RENAME" in " ".join(getattr(step, "argv", ())) for step in import_plan.steps)
    assert CANARY not in drill and CANARY not in in_place


def test_sql_hook_values_are_hex_literals_in_the_session_prelude():
    from kompose.engines.mariadb import ENGINE

    argv, stdin, offset = ENGINE.hook_input(("mariadb", "--database=x"), "SELECT @stack;\n",
                                            (("stack", "sh'op"),), (("status", "ok\\'; DROP"),), atomic=True)
    assert argv == ("mariadb", "--database=x") and offset == 2
    lines = stdin.decode().splitlines()
    assert lines[0] == ("SET @stack = CONVERT(X'" + "sh'op".encode().hex() + "' USING utf8mb4), @status = CONVERT(X'"
                        + "ok\\'; DROP".encode().hex() + "' USING utf8mb4);")
    assert lines[1:] == ["START TRANSACTION;", "SELECT @stack;", "COMMIT;"]


def test_a_mariadb_error_line_is_told_as_the_hook_files_line(tmp_path):
    from kompose.engines.mariadb import ENGINE
    from kompose.hooks.kinds.sql import script

    (tmp_path / "010.sql").write_text("SELECT 1;\nSELECT 2;\n")
    (tmp_path / "020.sql").write_text("SELECT 3;\nSELEC oops;\n")
    joined = script([tmp_path / "010.sql", tmp_path / "020.sql"])
    message = "ERROR 1064 (42000) at line 6: You have an error in your SQL syntax"
    assert joined.locate(message, ENGINE.hook_line, 2) == \
        "ERROR 1064 (42000) at 020.sql:2: You have an error in your SQL syntax"
