"""The actions' plans built without a Docker Engine: the container lookup is injected into the
Context, and the plan is the one the dry run would print (its steps, the container, no secret)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from kompose.actions import db_export, db_import, db_rollback
from kompose.console import Console
from kompose.context import Context, Options
from kompose.plan.model import Plan
from kompose.plan.render import render_json, render_text
from kompose.plan.steps import Container
from kompose.stacks import discover

SECRET = "pl4n-0nly-s3cret"
CONTAINER = Container("c0ffee123456", "app-postgres-1", "kompose/postgres:15", "injected for the test")


@pytest.fixture
def ctx(tmp_path: Path):
    root = tmp_path / "root"
    (root / "app").mkdir(parents=True)
    (root / "app" / "compose.yaml").write_text("services: {}\n")
    (root / "app" / ".env").write_text(f"DB_NAME=app\nDB_USER=app\nDB_PASSWORD={SECRET}\nDB_ENGINE=postgres\n")
    asked = []

    def lookup(ctx, stack, env):
        asked.append(stack.name)
        return CONTAINER

    context = Context(Options(root=root, dry_run=True), Console(out=io.StringIO(), err=io.StringIO()),
                      process_env={"PATH": "/usr/bin:/bin"}, find_container=lookup)
    context.asked = asked
    context.no_docker = lambda: pytest.fail("a plan asked the Docker Engine")
    context.docker = context.no_docker
    return context


def _stack(ctx):
    (stack,) = discover(ctx.root)
    return stack


def _texts(ctx, stack_plan) -> tuple[str, str]:
    plan = Plan(stack_plan.command, [stack_plan])
    ctx.console.add_secrets([SECRET])
    return render_text(plan), render_json(plan)


def test_an_export_plan_needs_no_engine(ctx):
    stack_plan = db_export.plan(ctx, _stack(ctx), transport_name="exec")
    text, data = _texts(ctx, stack_plan)
    assert ctx.asked == ["app"]
    assert "app-postgres-1: PGPASSWORD=*** pg_dump" in text
    assert "rename" in text and ".partial ->" in text
    assert SECRET not in text and SECRET not in data


def test_an_import_plan_needs_no_engine(ctx):
    stack = _stack(ctx)
    dump = stack.dir / "app_20261201_120000.sql"
    dump.write_text("-- PostgreSQL database dump\n\n-- PostgreSQL database dump complete\n\n")
    stack_plan = db_import.plan(ctx, stack)
    text, data = _texts(ctx, stack_plan)
    assert f"--dbname=app__kompose_tmp < {dump}" in text
    assert "swap: app -> app__kompose_prev, app__kompose_tmp -> app" in text
    assert ctx.asked == ["app"]
    assert SECRET not in text and SECRET not in data


def test_a_rollback_plan_needs_no_engine(ctx):
    text, data = _texts(ctx, db_rollback.plan(ctx, _stack(ctx)))
    assert "app__kompose_prev" in text
    assert SECRET not in text and SECRET not in data


def test_an_export_checks_and_dumps_in_one_exec(ctx):
    """Exec transport, no hook between them: the check and pg_dump are one step (one exec,
    run/export_checks.py), and the dry run says so."""
    from kompose.plan.steps import Exec
    from kompose.run.export_checks import ExportCheck

    stack_plan = db_export.plan(ctx, _stack(ctx), transport_name="exec")
    (check,) = [step for step in stack_plan.steps if isinstance(step, ExportCheck)]
    assert isinstance(check.dump, Exec) and check.dump.argv[0] == "pg_dump"
    assert not any(isinstance(step, Exec) for step in stack_plan.steps)
    text, _ = _texts(ctx, stack_plan)
    assert "beside pg_dump app (plain, exec) in the same exec" in text


def test_a_pre_export_hook_keeps_the_check_and_the_dump_apart(ctx):
    from kompose.plan.steps import Exec
    from kompose.run.export_checks import ExportCheck

    stack = _stack(ctx)
    (stack.dir / "hooks.sh").write_text("hook_pre_db_export() { echo maintenance on; }\n")
    steps = db_export.plan(ctx, stack, transport_name="exec").steps
    (check,) = [step for step in steps if isinstance(step, ExportCheck)]
    assert check.dump is None
    kinds = [type(step).__name__ for step in steps]
    assert kinds.index("ExportCheck") < kinds.index("Hook") < kinds.index("Exec")
    assert [step for step in steps if isinstance(step, Exec)][0].argv[0] == "pg_dump"
