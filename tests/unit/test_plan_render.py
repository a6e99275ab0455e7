"""Plans rendered as text and JSON: every step shown, secrets never."""

from __future__ import annotations

import json
from pathlib import Path

from kompose.engines.postgres import sql as postgres
from kompose.plan.steps import CheckDump, Container, Exec, Note, Remove, RemoveStale, Rename, Sql
from kompose.hooks.kinds.bash import Hook
from kompose.plan.model import Plan, StackPlan
from kompose.plan.render import render_json, render_text

SECRET = "s3cr3t-Pa55"
CONTAINER = Container("0123456789ab", "data-postgres-1", "kompose/postgres:15", "DB_HOST=postgres")


def sample_plan(tmp_path: Path) -> Plan:
    conn = postgres.Connection("app", "kompose", SECRET, "5432")
    dump = tmp_path / "app_20240101_000000.sql"
    variables = postgres.variables(conn)
    stack = StackPlan(
        stack="sexy", directory=tmp_path, command="db:import", lock=True,
        env={"DB_PASSWORD": SECRET, "DB_NAME": "app"},
    )
    stack.steps += [
        Note("database app in container data-postgres-1"),
        CheckDump(dump, "plain"),
        Hook("pre_swap", "hook_pre_swap", (str(dump), "app__kompose_tmp"),
             env=(("KOMPOSE_DB", "app__kompose_tmp"), ("API_TOKEN", SECRET)), timeout=30),
        Exec(CONTAINER, postgres.restore_argv(conn, "app__kompose_tmp", "plain"), conn.exec_env(), stdin_file=dump,
             what="restore"),
        Sql(CONTAINER, "postgres", postgres.SWAP, variables, conn.exec_env(), "swap",
            postgres.psql_script_argv(conn, "postgres", variables)),
        Rename(tmp_path / "a.partial", tmp_path / "a"),
        RemoveStale(tmp_path, "app_*.partial", "left over"),
    ]
    stack.post.append(Hook("post_db_import", "hook_post_db_import", (str(dump),)))
    stack.on_failure.append(Remove((tmp_path / "a.partial",), "never left behind"))
    return Plan("db:import", [stack])


def test_text_shows_every_step_and_masks_secrets(tmp_path: Path):
    text = render_text(sample_plan(tmp_path))
    assert SECRET not in text
    assert "sexy: db:import  [locks the stack]" in text
    assert "PGPASSWORD=*** psql --host=127.0.0.1 --port=5432 --username=kompose --no-password" in text
    assert f"--dbname=app__kompose_tmp < {tmp_path}/app_20240101_000000.sql" in text
    assert f"hook_pre_swap {tmp_path}/app_20240101_000000.sql app__kompose_tmp (timeout 30 s)" in text
    # the swap script with psql variables shown substituted and quoted
    assert 'ALTER DATABASE "app" ALLOW_CONNECTIONS false;' in text
    assert "set_config('kompose.tmp', 'app__kompose_tmp', false)" in text
    assert text.index("hook_pre_swap") < text.index("ALLOW_CONNECTIONS false") < text.index("hook_post_db_import")
    assert "on failure (clean-up):" in text and "never left behind" in text


def test_json_is_complete_and_masks_secrets(tmp_path: Path):
    rendered = render_json(sample_plan(tmp_path))
    assert SECRET not in rendered
    data = json.loads(rendered)
    (stack,) = data["stacks"]
    kinds = [step["kind"] for step in stack["steps"]]
    assert kinds == ["note", "check", "hook", "exec", "sql", "rename", "remove"]
    hook, exec_step, sql_step = stack["steps"][2], stack["steps"][3], stack["steps"][4]
    assert hook["env"] == {"KOMPOSE_DB": "app__kompose_tmp", "API_TOKEN": "***"}
    assert exec_step["env"] == {"PGPASSWORD": "***"}
    assert exec_step["container"]["name"] == "data-postgres-1"
    assert exec_step["argv"][0] == "psql" and exec_step["stdin_file"].endswith(".sql")
    assert sql_step["env"] == {"PGPASSWORD": "***"}
    assert ["live", "app"] in sql_step["variables"]
    assert stack["post"][0]["function"] == "hook_post_db_import"
    assert stack["on_failure"][0]["kind"] == "remove"
