"""Monitoring end to end: real apprise delivering to an HTTP receiver on 127.0.0.1 (json:// and form://),
Healthchecks-style pings, the Prometheus textfile read back with prometheus-client's parser, `status`
as a monitor sees it — with real hooks failing, and a real db:export against PostgreSQL."""

from __future__ import annotations

import json
import re
import secrets
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.receiver import Receiver, closed_port

pytestmark = pytest.mark.docker

SECRET_PW = "pw-" + secrets.token_hex(6)
FAILING_HOOK = """
hook_pre_db_cleanup() {
  echo "disk full on /srv while cleaning ($DB_PASSWORD)" >&2
  return 3
}
"""


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def _root_env(kroot, text: str) -> None:
    env = kroot.path / ".env"
    env.write_text(env.read_text() + text)


def _two_stacks(kroot, failing: bool = True) -> tuple[str, str]:
    blog = kroot.stack("blog", env=f"DB_NAME=blog\nDB_PASSWORD={SECRET_PW}\n", hooks=FAILING_HOOK if failing else None)
    shop = kroot.stack("shop", env="DB_NAME=shop\n")
    return blog, shop


def _metrics(path: Path) -> dict[tuple[str, str, str], float]:
    """(metric, stack, operation) -> value, by prometheus-client's own parser."""
    found = {}
    for family in text_string_to_metric_families(path.read_text()):
        for sample in family.samples:
            found[(sample.name, sample.labels.get("stack", sample.labels.get("repository")),
                   sample.labels.get("operation", ""))] = sample.value
    return found


def test_one_failure_message_through_json_and_form_names_the_stacks_and_the_error_and_no_secret(kroot, receiver):
    token = "tok-" + secrets.token_hex(8)
    json_url, form_url = receiver.url("json", f"/json/{token}"), receiver.url("form", f"/form/{token}")
    _root_env(kroot, f'KOMPOSE_NOTIFY="{json_url}, {form_url}"\n')
    blog, shop = _two_stacks(kroot)

    result = kroot.run("*", "db:cleanup")
    assert result.code == 1, result
    requests = receiver.wait(2)
    assert sorted(r.path for r in requests) == [f"/form/{token}", f"/json/{token}"]  # one message per run
    [as_json] = [json.loads(r.body) for r in requests if r.path.startswith("/json")]
    [as_form] = [r.form() for r in requests if r.path.startswith("/form")]
    for message in (as_json, as_form):
        assert message["type"] == "failure"
        assert "1 of 2 stacks failed" in message["title"] and "db:cleanup" in message["title"]
        body = message["message"]
        assert f"✗ {blog}: failed after" in body and "hook hook_pre_db_cleanup failed with exit code 3" in body
        assert f"✓ {shop}: ok in" in body and "exit code 1" in body
        assert SECRET_PW not in body and token not in body
    everything = result.output + json.dumps(as_json) + json.dumps(as_form)
    assert token not in result.output and SECRET_PW not in everything
    assert result.stderr.count("warning:") == 0, result


def test_stacks_side_by_side_still_make_one_message_and_json_stays_clean(kroot, receiver):
    _root_env(kroot, f"KOMPOSE_NOTIFY={receiver.url('json', '/n')}\n")
    blog, shop = _two_stacks(kroot)
    result = kroot.run("--jobs", "2", "--json", "*", "db:cleanup")
    assert result.code == 1, result
    assert [o["stack"] for o in json.loads(result.stdout)["outcomes"]] == [blog, shop]  # stdout: the JSON alone
    [request] = receiver.wait(1)
    time.sleep(0.3)
    assert len(receiver.requests) == 1
    body = json.loads(request.body)["message"]
    assert f"✗ {blog}" in body and f"✓ {shop}" in body


def test_a_stack_that_failed_last_time_and_succeeds_sends_a_recovery_message(kroot, receiver):
    _root_env(kroot, f"KOMPOSE_NOTIFY={receiver.url('json', '/n')}\n")
    blog, shop = _two_stacks(kroot)
    assert kroot.run("*", "db:cleanup").code == 1
    receiver.wait(1)
    assert kroot.run("*", "db:cleanup").code == 1  # still failing: another failure message, no recovery
    receiver.wait(2)
    (kroot.dir("blog") / "hooks.sh").write_text("hook_pre_db_cleanup() {\n  true\n}\n")

    assert kroot.run("*", "db:cleanup").code == 0
    messages = [json.loads(r.body) for r in receiver.wait(3)]
    assert len(messages) == 3, messages
    assert ["recovered" in m["title"] for m in messages] == [False, False, True]
    recovery = messages[2]
    assert recovery["type"] == "success" and f"recovered: {blog}" in recovery["title"]
    assert "last time: hook hook_pre_db_cleanup failed with exit code 3" in recovery["message"]
    state = json.loads((kroot.dir("blog") / ".kompose-last-run.json").read_text())
    assert state["db:cleanup"]["status"] == "ok" and state["db:cleanup"]["last_success"] == state["db:cleanup"]["at"]
    assert (kroot.dir("blog") / ".kompose-last-run.json").stat().st_mode & 0o777 == 0o600

    assert kroot.run("*", "db:cleanup").code == 0  # fine again: KOMPOSE_NOTIFY_ON=failure sends nothing
    time.sleep(0.5)
    assert len(receiver.requests) == 3


@pytest.mark.parametrize("on, sent", [("always", 1), ("never", 0), ("failure", 0)])
def test_notify_on(kroot, receiver, on, sent):
    _root_env(kroot, f"KOMPOSE_NOTIFY={receiver.url('json', '/n')}\nKOMPOSE_NOTIFY_ON={on}\n")
    _two_stacks(kroot, failing=False)
    assert kroot.run("*", "db:cleanup").code == 0
    time.sleep(0.5) if not sent else receiver.wait(sent)
    assert len(receiver.requests) == sent
    if sent:
        message = json.loads(receiver.requests[0].body)
        assert message["type"] == "success" and "2 stacks succeeded" in message["title"]


def test_bad_notify_on_is_a_configuration_error_before_anything_runs(kroot, receiver):
    _root_env(kroot, "KOMPOSE_NOTIFY_ON=sometimes\n")
    _two_stacks(kroot)
    result = kroot.run("*", "db:cleanup")
    assert result.code == 2 and result.stderr.strip().splitlines() == [
        "error: KOMPOSE_NOTIFY_ON='sometimes': expected one of failure, always, never"]
    assert not (kroot.dir("blog") / ".kompose-last-run.json").exists()


def test_pings_start_then_fail_with_the_exit_code_and_a_stack_of_its_own_pings_success(kroot, receiver):
    shared = "/ping/" + secrets.token_hex(8)
    own = "/ping/" + secrets.token_hex(8)
    _root_env(kroot, f"KOMPOSE_PING_URL_DB_CLEANUP={receiver.url('http', shared)}\n")
    blog, shop = _two_stacks(kroot)
    third = kroot.stack("wiki", env=f"DB_NAME=wiki\nKOMPOSE_PING_URL_DB_CLEANUP={receiver.url('http', own)}?rid=7\n")

    result = kroot.run("*", "db:cleanup")
    assert result.code == 1, result
    requests = receiver.wait(4)
    assert sorted(r.path for r in requests) == sorted(
        [f"{shared}/start", f"{shared}/fail", f"{own}/start?rid=7", f"{own}?rid=7"])
    assert all(r.method == "POST" for r in requests)
    [fail] = [r for r in requests if r.path == f"{shared}/fail"]
    assert fail.body.splitlines()[0] == "exit code 1"
    assert f"{blog}: failed: hook hook_pre_db_cleanup failed with exit code 3" in fail.body
    assert f"{shop}: ok" in fail.body and third not in fail.body and SECRET_PW not in fail.body
    [success] = [r for r in requests if r.path == f"{own}?rid=7"]
    assert success.body.splitlines() == ["exit code 0", f"{third}: ok"]
    assert shared not in result.output and own not in result.output
    # /start went out before the stacks ran, the final pings after
    assert [r.path for r in requests].index(f"{shared}/start") < [r.path for r in requests].index(f"{shared}/fail")


def test_a_failing_run_wide_pre_run_hook_fails_every_check_and_is_in_the_message(kroot, receiver):
    _root_env(kroot, f"KOMPOSE_PING_URL_DB_CLEANUP={receiver.url('http', '/ping/run')}\n"
                     f"KOMPOSE_NOTIFY={receiver.url('json', '/n')}\n")
    (kroot.path / "hooks.sh").write_text("hook_pre_run() {\n  echo no maintenance window >&2\n  return 2\n}\n")
    _two_stacks(kroot, failing=False)
    result = kroot.run("*", "db:cleanup")
    assert result.code == 1, result
    requests = receiver.wait(3)
    assert sorted(r.path for r in requests) == ["/n", "/ping/run/fail", "/ping/run/start"]
    [fail] = [r for r in requests if r.path == "/ping/run/fail"]
    assert fail.body.startswith("exit code 1\n") and "hook_pre_run" in fail.body
    [message] = [json.loads(r.body) for r in requests if r.path == "/n"]
    assert message["type"] == "failure" and "hook_pre_run" in message["message"]


def test_an_uptime_kuma_push_url_gets_up_or_down_and_no_start(kroot, receiver):
    _root_env(kroot, f"KOMPOSE_PING_URL_DB_CLEANUP={receiver.url('http', '/api/push/kuma-tok')}?status=up&msg=OK&ping=\n")
    blog, shop = _two_stacks(kroot)
    assert kroot.run("*", "db:cleanup").code == 1
    [down] = receiver.wait(1)
    time.sleep(0.3)
    assert len(receiver.requests) == 1 and down.method == "GET"
    path, _, query = down.path.partition("?")
    fields = dict(pair.split("=", 1) for pair in query.split("&"))
    assert path == "/api/push/kuma-tok" and fields["status"] == "down"
    from urllib.parse import unquote_plus

    assert f"{blog}: failed: hook hook_pre_db_cleanup failed with exit code 3" in unquote_plus(fields["msg"])
    (kroot.dir("blog") / "hooks.sh").unlink()
    assert kroot.run("*", "db:cleanup").code == 0
    assert "status=up" in receiver.wait(2)[1].path


def test_plain_ping_url_is_the_export_check_only(kroot, receiver):
    _root_env(kroot, f"KOMPOSE_PING_URL={receiver.url('http', '/p')}\n")
    _two_stacks(kroot, failing=False)
    assert kroot.run("*", "db:cleanup").code == 0
    time.sleep(0.3)
    assert receiver.requests == []  # a cleanup must not turn the export's check green


def test_dry_run_shows_what_would_be_sent_and_sends_nothing(kroot, receiver):
    metrics = kroot.path / "kompose.prom"
    _root_env(kroot, f"KOMPOSE_NOTIFY={receiver.url('json', '/n/tok-dry')}\nKOMPOSE_METRICS_FILE={metrics}\n"
                     f"KOMPOSE_PING_URL_DB_CLEANUP={receiver.url('http', '/ping/dry-uuid')}\n")
    blog, shop = _two_stacks(kroot)
    result = kroot.run("*", "db:cleanup", "--dry-run")
    assert result.code == 0, result
    text = result.stdout
    assert "monitoring (a dry run sends and writes none of it):" in text
    assert "notify   one message when a stack fails or recovers, to 1 apprise URL(s): json://***" in text
    assert f"ping     KOMPOSE_PING_URL_DB_CLEANUP (***, healthchecks) for {blog}, {shop}: /start before the run" in text
    assert f"metrics  {metrics}: rewritten after the run" in text
    assert "tok-dry" not in result.output and "dry-uuid" not in result.output

    as_json = kroot.run("--json", "*", "db:cleanup", "--dry-run")
    monitoring = json.loads(as_json.stdout)["monitoring"]
    assert monitoring["notify"] == {"on": "failure", "urls": ["json://***"]}
    assert monitoring["pings"] == [{"key": "KOMPOSE_PING_URL_DB_CLEANUP", "url": "***", "style": "healthchecks",
                                    "stacks": [blog, shop],
                                    "events": "/start before the run, then success, or /fail with the exit code"}]
    assert "dry-uuid" not in as_json.output and "tok-dry" not in as_json.output
    time.sleep(0.3)
    assert receiver.requests == [] and not metrics.exists()
    assert not (kroot.dir("blog") / ".kompose-last-run.json").exists()


# ------------------------------------------------------------------ faults


def _fault_env(kroot, notify_url: str, ping_url: str, extra: str = "") -> None:
    _root_env(kroot, f"KOMPOSE_NOTIFY={notify_url}\nKOMPOSE_NOTIFY_ON=always\n"
                     f"KOMPOSE_PING_URL_DB_CLEANUP={ping_url}\n{extra}")


def test_receiver_down_is_one_warning_line_each_and_never_changes_the_exit_code(kroot):
    port = closed_port()
    _fault_env(kroot, f"json://127.0.0.1:{port}/n/tok-down", f"http://127.0.0.1:{port}/ping/down-uuid")
    _two_stacks(kroot)
    result = kroot.run("*", "db:cleanup")
    assert result.code == 1, result  # the stack's failure, nothing more
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 3, result  # /start, /fail, the notification
    assert sum("ping KOMPOSE_PING_URL_DB_CLEANUP" in w and "Connection refused" in w for w in warnings) == 2
    assert sum(w.startswith("warning: notification not delivered") for w in warnings) == 1
    assert "tok-down" not in result.output and "down-uuid" not in result.output and "Traceback" not in result.output

    _two_stacks(kroot, failing=False)
    (kroot.dir("blog") / "hooks.sh").unlink()
    assert kroot.run("*", "db:cleanup").code == 0


def test_a_500_answer_is_a_warning(kroot):
    receiver = Receiver(mode="500")
    try:
        _fault_env(kroot, receiver.url("json", "/n"), receiver.url("http", "/ping/x"))
        _two_stacks(kroot, failing=False)
        result = kroot.run("*", "db:cleanup")
        assert result.code == 0, result
        warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
        assert sorted(w for w in warnings if "ping" in w) == [
            "warning: ping KOMPOSE_PING_URL_DB_CLEANUP (start) not delivered: HTTP 500",
            "warning: ping KOMPOSE_PING_URL_DB_CLEANUP (success) not delivered: HTTP 500",
        ]
        [notify] = [w for w in warnings if "notification" in w]
        assert notify.startswith("warning: notification not delivered:") and "error=500" in notify, notify
        assert len(receiver.requests) == 3
    finally:
        receiver.close()


def test_a_hanging_receiver_costs_at_most_the_timeout(kroot):
    receiver = Receiver(mode="hang")
    try:
        # apprise's own read timeout (rto) raised above kompose's: kompose's deadline must end it
        _fault_env(kroot, receiver.url("json", "/n?rto=60&cto=60"), receiver.url("http", "/ping/hang"),
                   "KOMPOSE_NOTIFY_TIMEOUT=2\n")
        _two_stacks(kroot, failing=False)
        started = time.monotonic()
        result = kroot.run("*", "db:cleanup", timeout=60)
        elapsed = time.monotonic() - started
        assert result.code == 0, result
        # /start (≤ 2 s), then the notification and the final ping side by side (≤ 2 s), plus start-up
        assert elapsed < 10, (elapsed, result)  # apprise alone would wait 60 s
        warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
        assert len(warnings) == 3, result
        assert "warning: notification not delivered: no answer within 2 s" in warnings
        assert sum("timed out" in w or "no answer within 2 s" in w for w in warnings) == 3, warnings
        assert "/ping/hang/start" in receiver.paths() and any(p.startswith("/n") for p in receiver.paths())
    finally:
        receiver.close()


# ------------------------------------------------------------------ metrics


def test_metrics_file_is_written_and_keeps_the_stacks_a_run_did_not_select(kroot):
    path = kroot.path / "textfile" / "kompose.prom"
    path.parent.mkdir()
    path.write_text("# HELP other_metric not ours\n# TYPE other_metric gauge\nother_metric 1\n")
    _root_env(kroot, f"KOMPOSE_METRICS_FILE={path}\n")
    blog, shop = _two_stacks(kroot, failing=False)
    before = time.time()
    assert kroot.run("*", "db:cleanup").code == 0
    first = _metrics(path)
    for stack in (blog, shop):
        assert first[("kompose_last_exit_code", stack, "db:cleanup")] == 0
        assert before <= first[("kompose_last_run_timestamp_seconds", stack, "db:cleanup")] <= time.time()
        assert first[("kompose_last_success_timestamp_seconds", stack, "db:cleanup")] == \
            first[("kompose_last_run_timestamp_seconds", stack, "db:cleanup")]
        assert first[("kompose_last_duration_seconds", stack, "db:cleanup")] >= 0
    assert not any(key[0] == "other_metric" for key in first)  # the file is kompose's own

    (kroot.dir("blog") / "hooks.sh").write_text(FAILING_HOOK)
    assert kroot.run(blog, "db:cleanup").code == 1  # this run selects blog only
    second = _metrics(path)
    assert second[("kompose_last_exit_code", blog, "db:cleanup")] == 1
    assert second[("kompose_last_run_timestamp_seconds", blog, "db:cleanup")] > \
        first[("kompose_last_run_timestamp_seconds", blog, "db:cleanup")]
    # a failure keeps the last success; shop's series are untouched
    assert second[("kompose_last_success_timestamp_seconds", blog, "db:cleanup")] == \
        first[("kompose_last_success_timestamp_seconds", blog, "db:cleanup")]
    assert {k: v for k, v in second.items() if k[1] == shop} == {k: v for k, v in first.items() if k[1] == shop}
    assert [p.name for p in path.parent.iterdir() if p.name != "kompose.prom.lock"] == ["kompose.prom"]


def test_two_runs_finishing_together_keep_both_stacks_series(kroot):
    import threading

    path = kroot.path / "kompose.prom"
    _root_env(kroot, f"KOMPOSE_METRICS_FILE={path}\n")
    names = [kroot.stack(f"s{i}", env=f"DB_NAME=s{i}\n") for i in range(4)]
    results = {}
    threads = [threading.Thread(target=lambda n=n: results.__setitem__(n, kroot.run(n, "db:cleanup"))) for n in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(r.code == 0 for r in results.values()), results
    found = _metrics(path)
    assert {k[1] for k in found if k[0] == "kompose_last_exit_code"} == set(names)


def test_unwritable_metrics_file_is_a_warning(kroot):
    _root_env(kroot, f"KOMPOSE_METRICS_FILE={kroot.path}/no/such/dir/kompose.prom\n")
    _two_stacks(kroot, failing=False)
    result = kroot.run("*", "db:cleanup")
    assert result.code == 0, result
    [warning] = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warning == f"warning: metrics not written to {kroot.path}/no/such/dir/kompose.prom: " \
                      f"{kroot.path}/no/such/dir is not a directory"
    assert not (kroot.path / "no").exists()


# ------------------------------------------------------------------ status


def test_status_exits_1_for_a_failed_last_run_overdue_or_unverified_dump(kroot):
    blog, shop = _two_stacks(kroot)
    assert kroot.run("*", "db:cleanup").code == 1
    status = kroot.run("status")
    assert status.code == 1, status
    row = next(line for line in status.lines if line.startswith(blog))
    assert "last db:cleanup failed" in row and "hook hook_pre_db_cleanup failed with exit code 3" in row
    assert status.lines[-1] == f"1 of 2 stack(s) need attention: {blog}"
    data = {r["stack"]: r for r in json.loads(kroot.run("status", "--json").stdout)["stacks"]}
    assert data[blog]["state"] == "failed"
    assert data[blog]["problems"] == [f"last db:cleanup failed ({data[blog]['last_runs']['db:cleanup']['at']}): "
                                      "hook hook_pre_db_cleanup failed with exit code 3"]
    assert data[shop]["state"] == "ok" and data[shop]["problems"] == []
    assert kroot.run("status", shop).code == 0  # only the selected stacks count

    # --max-age: shop has no dump at all
    overdue = kroot.run("status", shop, "--max-age", "26h", "--json")
    assert overdue.code == 1
    [row] = json.loads(overdue.stdout)["stacks"]
    assert row["problems"] == ["overdue: no dump at all"] and row["max_age_seconds"] == 26 * 3600

    # a schedule, and a dump kompose.sh made (complete, no manifest): unverified; old: overdue
    (kroot.dir("shop") / ".env").write_text('DB_NAME=shop\nKOMPOSE_SCHEDULE_DB_EXPORT="0 3 * * *"\n')
    dump = kroot.dir("shop") / f"shop_{time.strftime('%Y%m%d_%H%M%S')}.sql"
    dump.write_text("-- PostgreSQL database dump\nSELECT 1;\n-- PostgreSQL database dump complete\n")
    [row] = json.loads(kroot.run("status", shop, "--json").stdout)["stacks"]
    assert row["problems"] == ["unverified: no manifest: pg_dump's end marker is there, nothing else checked"], row
    assert kroot.run("status", shop, "--max-age", "1s", "--json").code == 1
    old = kroot.dir("shop") / "shop_20200101_030000.sql"
    dump.rename(old)
    [row] = json.loads(kroot.run("status", shop, "--json").stdout)["stacks"]
    assert row["problems"][0].startswith("overdue: the newest dump is"), row

    # a failed db:import is a person's at a terminal, not the host's backups
    record = {"status": "failed", "at": "2026-11-23T03:00:00+00:00", "error": "x"}
    (kroot.dir("blog") / ".kompose-last-run.json").write_text(json.dumps({"db:import": record}))
    assert kroot.run("status", blog).code == 0

    bad = kroot.run("status", "--max-age", "soon")
    assert bad.code == 2 and "--max-age 'soon'" in bad.stderr and "Traceback" not in bad.output


# ------------------------------------------------------------------ a real database


def _db_stack(kroot, pg, password: str) -> str:
    return kroot.stack("db", compose="services: {}\n", env=(
        f"DB_CONTAINER={pg.container.name}\nDB_NAME={pg.database}\nDB_USER={pg.user}\nDB_PASSWORD={password}\n"))


def test_db_export_against_postgres_reports_sizes_and_the_real_error(kroot, pg, receiver):
    path = kroot.path / "kompose.prom"
    ping = "/ping/" + secrets.token_hex(8)
    _root_env(kroot, f"KOMPOSE_NOTIFY={receiver.url('json', '/n')}\nKOMPOSE_NOTIFY_ON=always\n"
                     f"KOMPOSE_METRICS_FILE={path}\nKOMPOSE_PING_URL={receiver.url('http', ping)}\n")
    pg.sql("CREATE TABLE items AS SELECT g AS id FROM generate_series(1, 1000) g")
    stack = _db_stack(kroot, pg, pg.password)
    assert kroot.run(stack, "db:export").code == 0
    [dump] = [p for p in kroot.dir("db").iterdir() if re.search(r"_\d{8}_\d{6}\.sql$", p.name)]
    assert _metrics(path)[("kompose_last_dump_bytes", stack, "db:export")] == dump.stat().st_size
    requests = receiver.wait(3)
    assert sorted(r.path for r in requests) == sorted(["/n", f"{ping}/start", ping])
    [message] = [json.loads(r.body) for r in requests if r.path == "/n"]
    assert f"✓ {stack}: ok in" in message["message"] and dump.name in message["message"]
    assert "KiB" in message["message"]

    wrong = "wrong-" + secrets.token_hex(6)
    _db_stack(kroot, pg, wrong)
    result = kroot.run(stack, "db:export")
    assert result.code == 1
    requests = receiver.wait(6)
    [_, failure] = [json.loads(r.body) for r in requests if r.path == "/n"]
    assert failure["type"] == "failure" and "password authentication failed" in failure["message"]
    [fail] = [r for r in requests if r.path == f"{ping}/fail"]
    assert fail.body.startswith("exit code 1\n") and "password authentication failed" in fail.body
    assert wrong not in json.dumps(failure) and wrong not in fail.body and wrong not in result.output
    metrics = _metrics(path)
    assert metrics[("kompose_last_exit_code", stack, "db:export")] == 1
    assert metrics[("kompose_last_dump_bytes", stack, "db:export")] == dump.stat().st_size  # the last good dump's
    assert kroot.run("status", stack).code == 1


def test_an_error_line_quoting_a_secret_arrives_masked(tmp_path, receiver):
    """after_run in-process, with an error line that quotes the stack's password and the ping URL."""
    import io

    from kompose import notify
    from kompose.console import Console
    from kompose.context import Context, Options
    from kompose.plan.model import Plan, StackPlan
    from kompose.run.outcomes import Outcome

    ping = receiver.url("http", "/ping/" + secrets.token_hex(8))
    (tmp_path / "blog").mkdir()
    ctx = Context(Options(root=tmp_path), Console(out=io.StringIO(), err=io.StringIO()),
                  process_env={"KOMPOSE_NOTIFY": receiver.url("json", "/n/tok-inproc")})
    env = {"DB_PASSWORD": SECRET_PW, "KOMPOSE_PING_URL": ping}
    plan = Plan("db:export", [StackPlan("blog", tmp_path / "blog", "db:export", env=env)])
    error = f"psql: could not connect with {SECRET_PW} (reported to {ping})\nsecond line {SECRET_PW}"
    notify.after_run(ctx, plan, [Outcome("blog", "failed", error=error, duration=0.2)], [], 1)
    requests = receiver.wait(2)
    [message] = [json.loads(r.body) for r in requests if r.path.startswith("/n")]
    [fail] = [r for r in requests if r.path.endswith("/fail")]
    assert "psql: could not connect with *** (reported to ***)" in message["message"]
    assert "second line" not in message["message"]
    for text in (json.dumps(message), fail.body, (tmp_path / "blog" / ".kompose-last-run.json").read_text(),
                 ctx.console.out.getvalue(), ctx.console.err.getvalue()):
        assert SECRET_PW not in text and ping not in text and "tok-inproc" not in text

