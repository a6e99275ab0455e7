"""The pure parts of the hook contract: points, time limits, policies, declarative keys, SQL
directories, the shared context, and the steps found for a point (no Docker, nothing runs)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from kompose.hooks import declarative
from kompose.hooks import context as hookcontext
from kompose.hooks import points as hooks
from kompose.hooks import sources as hookset
from kompose.hooks.kinds import sql as sqlhooks
from kompose.errors import ConfigError
from kompose.hooks.template import TEMPLATE, write
from kompose.hooks.kinds.exec import ExecHook
from kompose.hooks.kinds.bash import Hook
from kompose.hooks.kinds.http import HttpHook
from kompose.hooks.kinds.sql import SqlHook
from kompose.hooks.kinds.tcp import TcpHook
from kompose.engines.postgres.sql import Connection
from tests.helpers import build_tree

# --- points, time limits, policy -------------------------------------------------------------


@pytest.mark.parametrize("point", ["pre_db_export", "post_up", "on_error", "pre_swap", "pre_run", "post_exec"])
def test_hook_points(point):
    assert hooks.is_point(point)


@pytest.mark.parametrize("name", ["helper", "on_errors", "pre_", "PRE_UP", "prefix_up"])
def test_not_hook_points(name):
    assert not hooks.is_point(name)


def test_points_sort_in_running_order():
    shuffled = ["on_error", "post_up", "post_db_import", "pre_swap", "pre_up", "pre_db_import", "post_down"]
    assert hooks.sort_points(shuffled) == [
        "pre_db_import", "pre_swap", "post_db_import", "post_down", "pre_up", "post_up", "on_error",
    ]


def test_timeout_precedence():
    env = {"KOMPOSE_HOOK_TIMEOUT": "30", "KOMPOSE_HOOK_TIMEOUT_PRE_DB_EXPORT": "5"}
    assert hooks.timeout({}, "pre_up") == 600
    assert hooks.timeout(env, "pre_up") == 30
    assert hooks.timeout(env, "pre_db_export") == 5
    assert hooks.timeout(env, "pre_db_export", ("KOMPOSE_HOOK_PRE_DB_EXPORT_HTTP_TIMEOUT", "1.5")) == 1.5


@pytest.mark.parametrize("raw", ["soon", "0", "-1", "inf", "nan"])
def test_bad_timeout_names_the_key(raw):
    with pytest.raises(ConfigError, match="KOMPOSE_HOOK_TIMEOUT_POST_UP"):
        hooks.timeout({"KOMPOSE_HOOK_TIMEOUT_POST_UP": raw}, "post_up")


def test_post_policy():
    assert hooks.post_policy({}) == "success"
    assert hooks.post_policy({"KOMPOSE_POST_POLICY": "Always"}) == "always"
    with pytest.raises(ConfigError, match="KOMPOSE_POST_POLICY"):
        hooks.post_policy({"KOMPOSE_POST_POLICY": "sometimes"})


# --- declarative hooks -----------------------------------------------------------------------


def test_declarative_keys_parse_in_kind_then_number_order():
    values = {
        "KOMPOSE_HOOK_PRE_DB_EXPORT_HTTP_2": "POST https://example.invalid/b",
        "KOMPOSE_HOOK_PRE_DB_EXPORT_HTTP": "GET http://127.0.0.1:8080/a?x=1",
        "KOMPOSE_HOOK_PRE_DB_EXPORT_TCP": "db:5432",
        "KOMPOSE_HOOK_PRE_DB_EXPORT_EXEC": "app php artisan 'down --render=x'",
        "KOMPOSE_HOOK_PRE_DB_EXPORT_HTTP_2_TIMEOUT": "3",
        "KOMPOSE_HOOK_TIMEOUT": "9",  # a setting, not a hook
        "OTHER": "x",
    }
    found, problems = declarative.parse(values, ".env")
    assert problems == []
    assert [(d.kind, d.number) for d in found] == [("tcp", 0), ("exec", 0), ("http", 0), ("http", 2)]
    tcp, exec_, get, post = found
    assert (tcp.host, tcp.port) == ("db", 5432)
    assert (exec_.service, exec_.argv) == ("app", ("php", "artisan", "down --render=x"))
    assert (get.method, get.url, get.body, get.timeout) == ("GET", "http://127.0.0.1:8080/a?x=1", None, None)
    assert post.timeout == ("KOMPOSE_HOOK_PRE_DB_EXPORT_HTTP_2_TIMEOUT", "3")


def test_point_names_may_contain_kind_words():
    # `kompose x exec ...` has hook points pre_exec / post_exec
    found = declarative.parse_strict(
        {"KOMPOSE_HOOK_PRE_EXEC_EXEC": "app true", "KOMPOSE_HOOK_POST_EXEC_HTTP": "GET http://h/"}, ".env"
    )
    assert [(d.point, d.kind) for d in found] == [("post_exec", "http"), ("pre_exec", "exec")]


def test_ipv6_tcp_target():
    [found] = declarative.parse_strict({"KOMPOSE_HOOK_POST_UP_TCP": "[::1]:8080"}, ".env")
    assert (found.host, found.port) == ("::1", 8080)


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("KOMPOSE_HOOK_PRE_UP_HTPP", "GET http://h/", "unknown hook key"),
        ("KOMPOSE_HOOK_PRE_UP_HTTP", "FETCH http://h/", "choose one of GET, POST"),
        ("KOMPOSE_HOOK_PRE_UP_HTTP", "GET ftp://h/", "not an http"),
        ("KOMPOSE_HOOK_PRE_UP_HTTP", "GET http://h/ body", "only a POST has a body"),
        ("KOMPOSE_HOOK_PRE_UP_HTTP", "POST http://h/ {{nope}}", "unknown placeholder"),
        ("KOMPOSE_HOOK_PRE_UP_HTTP", "", "is empty"),
        ("KOMPOSE_HOOK_PRE_UP_TCP", "db", "expected <host>:<port>"),
        ("KOMPOSE_HOOK_PRE_UP_TCP", "db:70000", "out of range"),
        ("KOMPOSE_HOOK_PRE_UP_EXEC", "app", "expected '<service> <command>"),
        ("KOMPOSE_HOOK_PRE_UP_EXEC", "app 'unclosed", "cannot split"),
        ("KOMPOSE_HOOK_PRE_UP_TCP_TIMEOUT", "3", "has no hook"),
    ],
)
def test_bad_declarative_definitions_name_file_and_key(key, value, message):
    _, problems = declarative.parse({key: value}, "blog/.env")
    assert len(problems) == 1 and message in problems[0] and problems[0].startswith("blog/.env: "), problems
    assert key.removesuffix("_TIMEOUT") in problems[0]


def test_bad_own_timeout():
    _, problems = declarative.parse(
        {"KOMPOSE_HOOK_PRE_UP_TCP": "h:1", "KOMPOSE_HOOK_PRE_UP_TCP_TIMEOUT": "never"}, ".env"
    )
    assert problems and "not a number of seconds" in problems[0]


def test_root_env_holds_only_run_wide_http_and_tcp():
    found, problems = declarative.parse(
        {
            "KOMPOSE_HOOK_POST_RUN_HTTP": "POST http://h/ {{succeeded}}",
            "KOMPOSE_HOOK_PRE_RUN_EXEC": "app true",
            "KOMPOSE_HOOK_PRE_DB_EXPORT_TCP": "h:1",
        },
        "root/.env",
        run_wide=True,
    )
    assert [d.key for d in found] == ["KOMPOSE_HOOK_POST_RUN_HTTP"]
    assert any("exec hooks run in a stack's container" in p for p in problems)
    assert any("run-wide hooks only" in p for p in problems)


def test_body_template_values_are_escaped_for_json():
    body = declarative.render_body('{"text": "{{stack}}: {{error}}"}', {"stack": "blog", "error": 'say "hi"\n'})
    assert json.loads(body) == {"text": 'blog: say "hi"\n'}


def test_password_in_url_is_masked():
    assert declarative.mask_url("https://u:secret@h/x") == "https://u:***@h/x"
    assert declarative.mask_url("https://h/x?a=b") == "https://h/x?a=b"


# --- SQL hook directories --------------------------------------------------------------------


def test_sql_directories(tmp_path: Path):
    build_tree(
        tmp_path,
        {
            "sql/pre_swap/020_b.sql": "SELECT 2;",
            "sql/pre_swap/010_a.sql": "SELECT 1;",
            "sql/pre_swap/ATOMIC": "",
            "sql/post_up/README.txt": "notes",
            "sql/post_up/1.sql": "SELECT 1;",
            "sql/pre_db_import/.keep": "",
            "sql/helpers/x.sql": "SELECT 1;",
        },
    )
    found, problems = sqlhooks.find(tmp_path)
    assert sorted(found) == ["post_up", "pre_swap"]
    assert [p.name for p in found["pre_swap"].files] == ["010_a.sql", "020_b.sql"]
    assert found["pre_swap"].atomic and not found["post_up"].atomic
    assert any("helpers: not a hook point" in p for p in problems)
    assert any("pre_db_import: no .sql files" in p for p in problems)
    assert any("ignored (not .sql): README.txt" in p for p in problems)


def test_sql_script_locates_errors_in_files(tmp_path: Path):
    build_tree(tmp_path, {"a.sql": "SELECT 1;\nSELECT 2;", "b.sql": "SELECT 3;\nSELECT oops;\n"})
    script = sqlhooks.script([tmp_path / "a.sql", tmp_path / "b.sql"])
    assert script.text == "SELECT 1;\nSELECT 2;\nSELECT 3;\nSELECT oops;\n"
    assert script.locate("psql:<stdin>:4: ERROR:  column") == "psql:b.sql:2: ERROR:  column"
    assert script.locate("psql:<stdin>:2: ERROR") == "psql:a.sql:2: ERROR"


# --- shared context --------------------------------------------------------------------------


def test_context_file_lines(tmp_path: Path):
    path = tmp_path / "ctx.env"
    path.write_text(
        "ROWS=3\nexport NAME='a b'\nnot a line\nROWS=4\nKOMPOSE_STATUS=ok\nstack=other\nEMPTY=\n"
    )
    assert hookcontext.read(path) == {"ROWS": "4", "NAME": "a b", "EMPTY": ""}
    assert hookcontext.read(tmp_path / "missing") == {}


def test_run_files_are_private_and_removed():
    files = hookcontext.RunFiles(hookcontext.new_run_id())
    path = files.context_file("my stack/x")
    assert path.exists() and path.parent == files.directory and "/" not in path.name.replace(str(path.parent), "")
    files.close()
    assert not files.directory.exists()


# --- the steps of one point ------------------------------------------------------------------


def _finder(tmp_path: Path, env_values: dict, env: dict | None = None) -> hookset.HookFinder:
    sources = hookset.gather_strict(tmp_path, env_values)
    conn = Connection("app", "app", "pw-not-in-argv", "5432")
    return hookset.HookFinder(sources, env or {}, "blog", "db:import", conn)


def test_steps_of_a_point_follow_the_kind_order(tmp_path: Path):
    build_tree(
        tmp_path,
        {
            "hooks.sh": "hook_pre_swap() { :; }\nhook_post_up() { :; }",
            "sql/pre_swap/010.sql": "SELECT 1;",
            "sql/pre_swap/ATOMIC": "",
        },
    )
    finder = _finder(
        tmp_path,
        {
            "KOMPOSE_HOOK_PRE_SWAP_HTTP": "GET http://h/",
            "KOMPOSE_HOOK_PRE_SWAP_EXEC": "app true",
            "KOMPOSE_HOOK_PRE_SWAP_TCP": "h:1",
            "KOMPOSE_HOOK_PRE_SWAP_TCP_TIMEOUT": "2",
        },
        {"KOMPOSE_HOOK_TIMEOUT_PRE_SWAP": "7"},
    )
    steps = finder.steps("pre_swap", "/d.sql", "app__kompose_tmp", env={"KOMPOSE_DB": "app__kompose_tmp"},
                         database="app__kompose_tmp", dump_file="/d.sql")
    assert [type(s) for s in steps] == [TcpHook, Hook, SqlHook, ExecHook, HttpHook]
    tcp, bash, sql, exec_, http = steps
    assert (tcp.timeout, bash.timeout, sql.timeout, http.timeout) == (2, 7, 7, 7)
    assert bash.args == ("/d.sql", "app__kompose_tmp")
    assert dict(bash.env) == {"KOMPOSE_DUMP_FILE": "/d.sql", "KOMPOSE_DB": "app__kompose_tmp"}
    assert dict(exec_.env)["KOMPOSE_DB"] == "app__kompose_tmp"
    assert sql.database == "app__kompose_tmp" and sql.atomic
    assert "--dbname=app__kompose_tmp" in sql.argv
    assert sql.argv[-2:] == ("--single-transaction", "--file=-")
    assert "--set=dump_file=/d.sql" in sql.argv and "--set=stack=blog" in sql.argv
    assert not any("pw-not-in-argv" in word for word in sql.argv)
    assert dict(sql.env) == {"PGPASSWORD": "pw-not-in-argv"}
    assert finder.steps("post_db_import") == []


def test_sql_hooks_without_a_database_are_a_config_error(tmp_path: Path):
    build_tree(tmp_path, {"sql/post_up/1.sql": "SELECT 1;"})
    sources = hookset.gather_strict(tmp_path, {})
    finder = hookset.HookFinder(sources, {}, "web", "up")
    with pytest.raises(ConfigError, match="SQL hooks need the stack's database"):
        finder.steps("post_up")


def test_root_hooks_file_gives_only_run_wide_points(tmp_path: Path):
    build_tree(tmp_path, {"hooks.sh": "hook_pre_run() { :; }\nhook_pre_up() { :; }\nhook_on_error() { :; }"})
    sources = hookset.gather_strict(tmp_path, {}, run_wide=True)
    assert sources.points() == ["pre_run", "on_error"]
    finder = hookset.HookFinder(sources, {}, "", "up")
    assert finder.steps("pre_up") == []
    assert [s.function for s in finder.steps("pre_run", "up", "-d")] == ["hook_pre_run"]


# --- kompose init ----------------------------------------------------------------------------


def test_template_names_every_point_and_parses(tmp_path: Path):
    path = write(tmp_path / "blog", "blog")
    text = path.read_text()
    for info in hooks.OPERATION_POINTS:
        if "<" not in info.point:
            assert f"hook_{info.point}()" in text, info.point
    for variable in ("KOMPOSE_CONTEXT", "KOMPOSE_RUN_ID", "KOMPOSE_FAILED_STEP", "KOMPOSE_ERROR", "KOMPOSE_DB",
                     "KOMPOSE_STATUS", "KOMPOSE_POST_POLICY"):
        assert variable in text, variable
    assert subprocess.run(["bash", "-n", str(path)]).returncode == 0
    # everything is commented out: sourcing it defines no hook
    assert hooks.find_functions(path) == []
    with pytest.raises(Exception, match="never overwrites"):
        write(tmp_path / "blog", "blog")
    assert TEMPLATE.count("{stack}") >= 1
