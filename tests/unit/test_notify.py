"""The pure parts of kompose/notify: settings, ping URLs and events, the message, metrics merging
(read back by prometheus-client's parser), the last-run state; and that none of it slows the start."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field

import pytest

from kompose.env import is_secret
from kompose.errors import ConfigError, UsageError
from kompose.notify import metrics, notifications, pings, settings, state
from kompose.reports.status import parse_duration
from tests.helpers import build_tree, kompose_env


@dataclass
class Out:  # the fields of run.outcomes.Outcome that notify reads
    stack: str
    status: str
    error: str | None = None
    duration: float = 1.25
    file: str | None = None
    bytes: int | None = None
    notes: list = field(default_factory=list)


def test_notify_and_ping_settings_are_secrets_but_their_options_are_not():
    assert is_secret("KOMPOSE_NOTIFY") and is_secret("KOMPOSE_PING_URL") and is_secret("KOMPOSE_PING_URL_DB_EXPORT")
    assert not is_secret("KOMPOSE_NOTIFY_ON") and not is_secret("KOMPOSE_NOTIFY_TIMEOUT")
    assert not is_secret("KOMPOSE_METRICS_FILE")


def test_settings():
    assert settings.split_urls(" json://a/b, form://c\nntfy://d ") == ["json://a/b", "form://c", "ntfy://d"]
    assert settings.split_urls("mailto://u:p@x.example?to=a@y.example,b@y.example,json://h/p") == [
        "mailto://u:p@x.example?to=a@y.example,b@y.example", "json://h/p"]
    assert settings.scheme_of("tgram://123:abc/456") == "tgram://***" and settings.scheme_of("no url") == "***"
    assert settings.notify_on({}) == "failure" and settings.notify_on({"KOMPOSE_NOTIFY_ON": "Always"}) == "always"
    with pytest.raises(ConfigError, match="expected one of failure, always, never"):
        settings.notify_on({"KOMPOSE_NOTIFY_ON": "sometimes"})
    assert settings.timeout({}) == 10.0 and settings.timeout({"KOMPOSE_NOTIFY_TIMEOUT": "2.5"}) == 2.5
    for bad in ("x", "0", "-1", "301"):
        with pytest.raises(ConfigError):
            settings.timeout({"KOMPOSE_NOTIFY_TIMEOUT": bad})


def test_ping_url_per_operation_wins_and_the_plain_one_is_the_export_check():
    env = {"KOMPOSE_PING_URL": "https://hc/plain", "KOMPOSE_PING_URL_DB_DRILL": "https://hc/drill"}
    assert settings.ping_url(env, "db:export") == ("KOMPOSE_PING_URL", "https://hc/plain")
    assert settings.ping_url(env, "db:drill") == ("KOMPOSE_PING_URL_DB_DRILL", "https://hc/drill")
    assert settings.ping_url(env, "db:cleanup") is None
    assert settings.ping_url({**env, "KOMPOSE_PING_URL_DB_EXPORT": "https://hc/exp"}, "db:export")[1] == "https://hc/exp"
    with pytest.raises(ConfigError) as error:
        settings.ping_url({"KOMPOSE_PING_URL": "ftp://secret-id"}, "db:export")
    assert "secret-id" not in str(error.value.message)


def test_event_urls_follow_healthchecks():
    assert pings.event_url("https://hc.example/ping/abc", "start") == "https://hc.example/ping/abc/start"
    assert pings.event_url("https://hc.example/ping/abc/", "fail") == "https://hc.example/ping/abc/fail"
    assert pings.event_url("https://k.example/api/push/x?status=up", "fail") == "https://k.example/api/push/x/fail?status=up"
    assert pings.event_url("https://hc.example/ping/abc", "success") == "https://hc.example/ping/abc"


def test_uptime_kuma_and_cronitor_urls_get_their_own_forms():
    body = "exit code 1\nblog: failed: boom\nshop: ok\n"
    kuma = "https://kuma.example/api/push/Tok?status=up&msg=OK&ping="
    assert pings.style_of(kuma) == "uptime-kuma" and pings.http_request(kuma, "start", "") is None
    assert pings.http_request(kuma, "fail", body) == (
        "GET", "https://kuma.example/api/push/Tok?ping=&status=down&msg=blog%3A+failed%3A+boom%3B+shop%3A+ok", None)
    cronitor = "https://cronitor.link/p/KEY/backup"
    assert pings.style_of(cronitor) == "cronitor"
    assert pings.http_request(cronitor, "start", "") == ("GET", cronitor + "?state=run", None)
    assert pings.http_request(cronitor, "success", "exit code 0\n") == ("GET", cronitor + "?state=complete", None)
    assert pings.http_request(cronitor, "fail", body)[1] == \
        cronitor + "?state=fail&status_code=1&message=blog%3A+failed%3A+boom%3B+shop%3A+ok"
    assert pings.http_request("https://hc.example/ping/u", "fail", body) == (
        "POST", "https://hc.example/ping/u/fail", body.encode())


def test_checks_group_stacks_by_url_and_the_final_event():
    envs = {"a": {"KOMPOSE_PING_URL": "http://h/1"}, "b": {"KOMPOSE_PING_URL": "http://h/1"},
            "c": {"KOMPOSE_PING_URL": "http://h/2"}, "d": {}}
    found = pings.checks(envs, "db:export")
    assert [(c.url, c.stacks) for c in found] == [("http://h/1", ("a", "b")), ("http://h/2", ("c",))]
    shared, own = found
    outcomes = [Out("a", "ok"), Out("b", "failed", "pg_dump: connection refused"), Out("c", "skipped", "locked")]
    event, body = pings.final_event(shared, outcomes, 1)
    assert event == "fail" and body == "exit code 1\na: ok\nb: failed: pg_dump: connection refused\n"
    assert pings.final_event(own, outcomes, 1) is None  # only skipped: the run holding the lock pings
    assert pings.final_event(shared, [Out("a", "ok"), Out("b", "skipped", "locked")], 4)[0] == "success"
    # the run-wide pre_run hook failed: no stack ran, every check fails
    skipped = [Out("c", "skipped", "not run: [pre_run] bash hook_pre_run failed")]
    assert pings.final_event(own, skipped, 1, ["run-wide hook hook_pre_run failed with exit code 2"]) == (
        "fail", "exit code 1\nc: skipped: not run: [pre_run] bash hook_pre_run failed\n"
        "run-wide hook hook_pre_run failed with exit code 2\n")


def test_the_message_has_one_error_line_per_stack_sizes_and_recoveries():
    outcomes = [Out("blog", "failed", "pg_dump: error: connection failed\nDETAIL: a second line"),
                Out("shop", "ok", file="/srv/shop/shop_20261123_030002.sql.gz", bytes=23270144),
                Out("wiki", "ok"), Out("news", "skipped", "locked by pid 7")]
    report = notifications.RunReport("db:export", outcomes, 1, recovered={"wiki": "disk full"}, host="h1")
    message = notifications.build(report)
    assert message.kind == "failure" and message.title == "kompose db:export on h1: 1 of 4 stacks failed"
    assert message.body.splitlines() == [
        "✗ blog: failed after 1.2 s: pg_dump: error: connection failed",
        "✓ shop: ok in 1.2 s, 22.2 MiB: shop_20261123_030002.sql.gz",
        "✓ wiki: ok in 1.2 s (recovered; last time: disk full)",
        "- news: skipped: locked by pid 7",
        "exit code 1",
    ]
    ok = notifications.RunReport("db:export", [Out("wiki", "ok")], 0, recovered={"wiki": "x"}, host="h1")
    assert notifications.build(ok).title == "kompose db:export on h1: recovered: wiki"
    assert notifications.one_line("x" * 400).endswith("…") and len(notifications.one_line("x" * 400)) == 300


@pytest.mark.parametrize("on, outcomes, recovered, expected", [
    ("failure", [Out("a", "ok")], {}, False),
    ("failure", [Out("a", "failed", "e")], {}, True),
    ("failure", [Out("a", "ok")], {"a": "e"}, True),
    ("always", [Out("a", "ok")], {}, True),
    ("never", [Out("a", "failed", "e")], {"a": "e"}, False),
])
def test_should_send(on, outcomes, recovered, expected):
    assert notifications.should_send(on, notifications.RunReport("db:export", outcomes, 0, recovered=recovered)) \
        is expected


def test_scrub_removes_urls_from_problem_lines():
    line = notifications.scrub("failed for tgram://123:abc/456 and http://10.0.0.1/x?t=1", ["tgram://123:abc/456"])
    assert line == "failed for tgram://*** and http://***"


def test_metrics_merge_keeps_other_series_and_the_last_success(tmp_path):
    path = tmp_path / "kompose.prom"
    metrics.write(path, [metrics.Result("a", "db:export", True, 1000.0, 2.5, 4096),
                         metrics.Result("b", "db:export", True, 1000.0, 3.0, 8192)], {"offsite": 120.0})
    metrics.write(path, [metrics.Result("a", "db:export", False, 2000.0, 0.5, None)])
    series = metrics.read(path.read_text())  # prometheus-client's text parser
    assert series[metrics.RUN] == {("a", "db:export"): 2000.0, ("b", "db:export"): 1000.0}
    assert series[metrics.SUCCESS] == {("a", "db:export"): 1000.0, ("b", "db:export"): 1000.0}
    assert series[metrics.EXIT_CODE] == {("a", "db:export"): 1.0, ("b", "db:export"): 0.0}
    assert series[metrics.DUMP_BYTES] == {("a", "db:export"): 4096.0, ("b", "db:export"): 8192.0}
    assert series[metrics.DURATION][("a", "db:export")] == 0.5
    assert series[metrics.REPOSITORY_AGE] == {("offsite",): 120.0}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kompose.prom", "kompose.prom.lock"]


def test_an_unparsable_metrics_file_is_replaced_with_a_warning(tmp_path):
    path = tmp_path / "kompose.prom"
    path.write_text("this is { not prometheus\n")
    warning = metrics.write(path, [metrics.Result("a", "db:export", True, 1.0, 1.0)])
    assert warning and "could not be parsed" in warning
    assert metrics.read(path.read_text())[metrics.RUN] == {("a", "db:export"): 1.0}


def test_state_keeps_the_last_success_through_failures(tmp_path):
    assert state.record(tmp_path, "db:export", {"status": "ok", "at": "t1"}) is None
    previous = state.record(tmp_path, "db:export", {"status": "failed", "at": "t2", "error": "e"})
    assert previous["status"] == "ok"
    assert state.read(tmp_path)["db:export"] == {"status": "failed", "at": "t2", "error": "e", "last_success": "t1"}
    (tmp_path / state.STATE_FILE).write_text("{broken")
    assert state.read(tmp_path) == {}
    state.record(tmp_path, "db:drill", {"status": "ok", "at": "t3"})
    assert (tmp_path / state.STATE_FILE).stat().st_mode & 0o777 == 0o600


def test_parse_duration():
    assert parse_duration("26h") == 26 * 3600 and parse_duration("90m") == 5400
    assert parse_duration("1d12h") == 36 * 3600 and parse_duration("1w") == 604800 and parse_duration("45") == 45
    for bad in ("", "soon", "1x", "0", "-5", "h"):
        with pytest.raises(UsageError):
            parse_duration(bad)


def test_dry_run_and_help_import_neither_apprise_nor_prometheus_client(tmp_path):
    root = build_tree(tmp_path, {
        ".env": "KOMPOSE_NOTIFY=json://127.0.0.1:9/x\nKOMPOSE_PING_URL_DB_CLEANUP=http://127.0.0.1:9/p\n"
                f"KOMPOSE_METRICS_FILE={tmp_path}/k.prom\n",
        "blog/compose.yaml": "services: {app: {image: kompose/app:latest}}\n",
        "blog/.env": "DB_NAME=blog\n",
    })
    for args in (["--help"], ["blog", "db:cleanup", "--dry-run"]):
        result = subprocess.run([sys.executable, "-X", "importtime", "-m", "kompose", "--root", str(root), *args],
                                capture_output=True, text=True, env=kompose_env(), stdin=subprocess.DEVNULL)
        assert result.returncode == 0, result.stderr[-2000:]
        imported = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in result.stderr.splitlines()
                    if line.startswith("import time:")}
        assert not imported & {"apprise", "prometheus_client", "requests"}, args
    assert not (tmp_path / "k.prom").exists()


def test_the_sender_reports_an_url_apprise_does_not_know_without_quoting_it():
    request = {"urls": ["nosuchservice://secret-host/tok"], "title": "t", "body": "b", "type": "failure"}
    result = subprocess.run([sys.executable, "-m", "kompose.notify.sender"], input=json.dumps(request),
                            capture_output=True, text=True, env=kompose_env())
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"problems": ["URL 1 of KOMPOSE_NOTIFY is not one apprise understands"]}
    assert "secret-host" not in result.stdout + result.stderr


def test_concurrent_writers_lose_no_series(tmp_path):
    import threading

    path = tmp_path / "kompose.prom"
    barrier = threading.Barrier(8)

    def writer(i: int) -> None:
        barrier.wait()
        for round in range(5):
            metrics.write(path, [metrics.Result(f"s{i}", "db:export", True, 1000.0 + round, 1.0, 10)])

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(metrics.read(path.read_text())[metrics.RUN]) == {(f"s{i}", "db:export") for i in range(8)}
