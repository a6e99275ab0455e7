"""The failure semantics after an operation (post policy, on_error) and how plans show hooks —
pure logic: the hook runner here is a stand-in that records calls."""

from __future__ import annotations

import io
import json
from pathlib import Path

from kompose.console import Console
from kompose.errors import HookError
from kompose.plan.steps import Compose
from kompose.hooks.kinds.exec import ExecHook
from kompose.hooks.kinds.bash import Hook
from kompose.hooks.kinds.http import HttpHook
from kompose.plan.model import Plan, RunHooks, StackPlan
from kompose.hooks.kinds.sql import SqlHook
from kompose.hooks.kinds.tcp import TcpHook
from kompose.plan.render import render_json, render_text, step_label
from kompose.run.outcomes import Outcome
from kompose.run.sequence import HookSequence


class RecordingRunner:
    """Records (hook, state); fails the hooks named in ``failing``."""

    def __init__(self, failing=()):
        self.calls: list[tuple[str, dict]] = []
        self.failing = set(failing)

    def run(self, step, state):
        self.calls.append((step.function, dict(state)))
        if step.function in self.failing:
            raise HookError(f"hook {step.function} failed with exit code 1")


def _sequence(failing=()):
    out = io.StringIO()
    runner = RecordingRunner(failing)
    outcome = Outcome("blog", "ok")
    return HookSequence(Console(out=out, color=False), runner, outcome), runner, outcome, out


POST = [Hook("post_up", "hook_post_up"), Hook("post_up", "hook_post_up_2")]
ON_ERROR = [Hook("on_error", "hook_on_error")]


def test_success_runs_post_with_status_ok_and_no_on_error():
    sequence, runner, outcome, _ = _sequence()
    sequence.post(POST, "success")
    sequence.on_error(ON_ERROR)
    assert [c[0] for c in runner.calls] == ["hook_post_up", "hook_post_up_2"]
    assert runner.calls[0][1] == {"KOMPOSE_STATUS": "ok"}
    assert outcome.status == "ok"


def test_failure_skips_post_and_runs_on_error_with_the_failure():
    sequence, runner, outcome, _ = _sequence()
    sequence.fail(Compose(("docker", "compose", "up", "-d")), HookError("compose failed"))
    sequence.post(POST, "success")
    sequence.on_error(ON_ERROR)
    assert runner.calls == [
        ("hook_on_error", {"KOMPOSE_STATUS": "failed", "KOMPOSE_FAILED_STEP": "docker compose up",
                           "KOMPOSE_ERROR": "compose failed"}),
    ]
    assert (outcome.status, outcome.error, outcome.failed_step) == ("failed", "compose failed", "docker compose up")


def test_policy_always_runs_post_after_a_failure_then_on_error():
    sequence, runner, outcome, _ = _sequence()
    sequence.fail(Hook("pre_up", "hook_pre_up"), HookError("hook hook_pre_up failed with exit code 3"))
    sequence.post(POST, "always")
    sequence.on_error(ON_ERROR)
    assert [c[0] for c in runner.calls] == ["hook_post_up", "hook_post_up_2", "hook_on_error"]
    assert all(state["KOMPOSE_STATUS"] == "failed" for _, state in runner.calls)
    assert runner.calls[0][1]["KOMPOSE_FAILED_STEP"] == "hook_pre_up"


def test_failing_post_hook_fails_the_stack_and_stops_the_rest_under_success():
    sequence, runner, outcome, _ = _sequence(failing={"hook_post_up"})
    sequence.post(POST, "success")
    sequence.on_error(ON_ERROR)
    assert [c[0] for c in runner.calls] == ["hook_post_up", "hook_on_error"]
    assert outcome.status == "failed" and outcome.failed_step == "hook_post_up"
    assert runner.calls[1][1]["KOMPOSE_FAILED_STEP"] == "hook_post_up"


def test_failing_post_hook_under_always_lets_the_others_run():
    sequence, runner, outcome, _ = _sequence(failing={"hook_post_up"})
    sequence.post(POST, "always")
    assert [c[0] for c in runner.calls] == ["hook_post_up", "hook_post_up_2"]
    assert runner.calls[1][1]["KOMPOSE_STATUS"] == "failed"


def test_failing_on_error_hook_never_hides_the_first_error():
    sequence, runner, outcome, out = _sequence(failing={"hook_on_error"})
    sequence.fail(Compose(("docker", "compose", "up")), HookError("the real problem"))
    sequence.on_error(ON_ERROR + [Hook("on_error", "hook_on_error_2")])
    assert outcome.error == "the real problem"
    assert [c[0] for c in runner.calls] == ["hook_on_error", "hook_on_error_2"]
    assert "on_error hook failed too" in out.getvalue()
    assert any("on_error hook failed too" in note for note in outcome.notes)


# --- plans ----------------------------------------------------------------------------------


def _plan(policy="success") -> Plan:
    stack = StackPlan("blog", Path("/r/blog"), "up", post_policy=policy)
    stack.steps += [TcpHook("pre_up", "KOMPOSE_HOOK_PRE_UP_TCP", "db", 5432, 3.0),
                    Hook("pre_up", "hook_pre_up", ("-d",), timeout=600.0),
                    Compose(("docker", "compose", "up", "-d"))]
    stack.post += [
        SqlHook("post_up", None, "app", (Path("/r/blog/sql/post_up/1.sql"),), True, (("stack", "blog"),),
                (("PGPASSWORD", "hunter22"),), ("psql", "--file=-"), 600.0),
        ExecHook("post_up", "KOMPOSE_HOOK_POST_UP_EXEC", "app", ("php", "artisan", "up"), 600.0),
        HttpHook("post_up", "KOMPOSE_HOOK_POST_UP_HTTP", "POST", "https://u:pw@h/x", None, 5.0),
    ]
    stack.on_error.append(Hook("on_error", "hook_on_error", timeout=600.0))
    run_hooks = RunHooks(Path("/r"), Path("/r/hooks.sh"), {},
                         pre=[Hook("pre_run", "hook_pre_run", ("up", "-d"), timeout=600.0)],
                         post=[Hook("post_run", "hook_post_run", ("up", "-d"), timeout=600.0)])
    return Plan("up", [stack], run_hooks)


def test_plan_text_shows_every_hook_the_policy_and_on_error():
    text = render_text(_plan())
    for needle in (
        "run-wide: before the first stack", "[pre_run] bash hook_pre_run up -d",
        "[pre_up] tcp db:5432 open (timeout 3 s)", "[pre_up] bash hook_pre_up -d (timeout 600 s)",
        "post hooks, only on success", "[post_up] sql 1.sql -> psql -d app in the database container (atomic",
        "[post_up] exec in app: php artisan up", "[post_up] http POST https://u:***@h/x (body: JSON summary)",
        "on error (after any failure", "[on_error] bash hook_on_error",
        "run-wide: after the last stack", "post_run hooks, only when every stack succeeded",
    ):
        assert needle in text, f"{needle!r} not in\n{text}"
    assert text.index("hook_pre_up") < text.index("docker compose up") < text.index("post hooks")
    assert "hunter22" not in text and ":pw@" not in text
    assert "always (also after a failure" in render_text(_plan("always"))


def test_plan_json_has_post_on_error_and_run_hooks_without_secrets():
    data = json.loads(render_json(_plan()))
    stack = data["stacks"][0]
    assert [s["hook_kind"] for s in stack["steps"][:2]] == ["tcp", "bash"]
    assert [s["hook_kind"] for s in stack["post"]] == ["sql", "exec", "http"]
    assert stack["post_policy"] == "success" and stack["on_error"][0]["function"] == "hook_on_error"
    assert data["run_hooks"]["pre"][0]["function"] == "hook_pre_run"
    text = json.dumps(data)
    assert "hunter22" not in text and ":pw@" not in text


def test_step_labels():
    plan = _plan()
    labels = [step_label(s) for s in plan.stacks[0].steps + plan.stacks[0].post]
    assert labels == ["KOMPOSE_HOOK_PRE_UP_TCP", "hook_pre_up", "docker compose up", "sql/post_up/",
                      "KOMPOSE_HOOK_POST_UP_EXEC", "KOMPOSE_HOOK_POST_UP_HTTP"]
