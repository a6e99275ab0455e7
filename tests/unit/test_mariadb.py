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
    assert script.count("CONCAT('RENAME TABLE ', @moves)") == 1
    assert "EXECUTE IMMEDIATE @moves" in script
    # the live tables go to prev before the restored ones come in (one ordered list)
    assert "SELECT 1 AS o" in script and "SELECT 2 AS o" in script and "SELECT 3 AS o" not in script
    assert "`press__kompose_prev`" in script and "`press__kompose_tmp`" in script


def test_the_rollback_rotates_through_the_temporary_database_in_the_same_statement():
    script = mariadb.rollback_argv(conn())[2]
    assert script.count("CONCAT('RENAME TABLE ', @moves)") == 1 and "SELECT 3 AS o" in script
    assert "no previous database press__kompose_prev" in script


@pytest.mark.parametrize("build", [mariadb.swap_argv, mariadb.rollback_argv, mariadb.recover_argv,
                                   mariadb.create_temp_argv])
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
