"""Issue 18: the command line people expect — what a user sees: exit codes, which stream a line
went to, the JSON on stdout. Real CLI, real hooks.sh, real `docker compose`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.helpers import run_kompose

ON_ERROR_HOOK = 'hook_on_error() {{ echo fired >> {marker}; }}\nhook_pre_up() {{ echo pre >> {marker}; }}\n'


def _one_error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), f"expected one 'error: …' line on stderr\n{result}"
    return lines[0]


# --- 1. typos of kompose's commands never reach compose ------------------------------------------


@pytest.mark.parametrize(
    ("typo", "meant"),
    [("db:exprot", "db:export"), ("db:imprt", "db:import"), ("db:lst", "db:list"), ("hoks", "hooks"),
     ("hooks:chek", "hooks:check")],
)
def test_a_typo_of_a_kompose_command_exits_2_with_a_suggestion_and_runs_nothing(kroot, typo, meant):
    marker = kroot.path / "hooks-fired"
    stack = kroot.stack("blog", env="DB_NAME=blog\n", hooks=ON_ERROR_HOOK.format(marker=marker))
    kroot.tree({"hooks.sh": ON_ERROR_HOOK.format(marker=marker)})  # run-wide on_error too
    result = kroot.run(stack, typo)
    assert result.code == 2, result
    assert f"did you mean {meant}?" in _one_error_line(result), result
    assert result.stdout == "", result
    assert "docker compose" not in result.output, result
    assert not marker.exists(), f"a hook fired for a typo: {marker.read_text()}"


@pytest.mark.parametrize(
    ("argv", "meant"),
    [(["statu"], "status"), (["stauts", "{stack}"], "status"), (["cronn"], "cron"), (["{stack}", "status"], "status")],
)
def test_a_near_miss_of_a_command_without_a_pattern_exits_2(kroot, argv, meant):
    stack = kroot.stack("blog")
    result = kroot.run(*[a.replace("{stack}", stack) for a in argv])
    assert result.code == 2, result
    line = _one_error_line(result)
    assert meant in line, result


def test_a_compose_command_still_goes_to_compose(kroot):
    stack = kroot.stack("blog")
    result = kroot.run(stack, "config", "--services")
    assert result.code == 0, result
    assert "app" in result.stdout, result


# --- 2. options between the pattern and the command --------------------------------------------


def test_kompose_options_between_the_pattern_and_the_command_are_kompose_options(kroot):
    stack = kroot.stack("blog", env="DB_NAME=blog\n")
    result = kroot.run(stack, "--json", "db:list")
    assert result.code == 0, result
    data = json.loads(result.stdout)
    assert data["kind"] == "dumps", data
    dry = kroot.run(stack, "-n", "--jobs", "2", "up", "-d")
    assert dry.code == 0, dry
    assert "dry run: nothing was changed" in dry.output and "docker compose up -d" in dry.stdout, dry


def test_an_unknown_option_between_the_pattern_and_the_command_is_refused_with_the_right_hint(kroot):
    stack = kroot.stack("blog")
    between = kroot.run(stack, "--detach", "up")
    assert between.code == 2, between
    line = _one_error_line(between)
    assert "--detach" in line and "after" in line and "before the pattern" not in line, between
    before = kroot.run("--no-such-option", stack, "ps")
    assert before.code == 2, before
    line = _one_error_line(before)
    assert "--no-such-option" in line and "go before the pattern" not in line, before


def test_a_kompose_option_after_a_kompose_command_says_where_it_goes(kroot):
    stack = kroot.stack("blog", env="DB_NAME=blog\n")
    result = kroot.run(stack, "db:list", "--jobs", "2")
    assert result.code == 2, result
    assert "before the command" in result.stderr, result


# --- 3. every item of a comma list must match ---------------------------------------------------


def test_a_comma_list_item_that_matches_nothing_exits_3_naming_it(kroot):
    marker = kroot.path / "hooks-fired"
    stack = kroot.stack("blog", hooks=ON_ERROR_HOOK.format(marker=marker))
    result = kroot.run(f"{stack},nosuch", "up", "-d")
    assert result.code == 3, result
    line = _one_error_line(result)
    assert "'nosuch'" in line and stack in line, result
    assert not marker.exists(), "a stack ran although the list named a stack that does not exist"


# --- 4. errors on stderr, results on stdout, --json is one document ---------------------------------


def test_a_failing_stack_prints_its_failure_on_stderr_and_the_others_result_on_stdout(kroot):
    bad = kroot.stack("bad", hooks='hook_pre_config() { echo from-the-hook; echo hook-complains >&2; return 1; }\n')
    good = kroot.stack("good")
    for jobs in ("1", "2"):
        result = kroot.run("--jobs", jobs, "*", "config", "-q")
        assert result.code == 1, result
        failures = [line for line in result.stderr.splitlines() if "✗" in line]
        assert len(failures) == 1 and bad in failures[0] and "hook_pre_config" in failures[0], result
        assert "✗" not in result.stdout, result
        assert f"▶ {good}" in result.stdout and "1 succeeded, 1 failed of 2 stacks" in result.stdout, result
        assert "from-the-hook" in result.stdout and "from-the-hook" not in result.stderr, result  # its stdout
        assert "hook-complains" in result.stderr and "hook-complains" not in result.stdout, result  # its stderr


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["--json", "nosuch", "ps"], id="no-stack"),
        pytest.param(["--json", "{stack}", "db:exprot"], id="typo"),
        pytest.param(["--json", "--jobs", "x", "{stack}", "ps"], id="bad-option-value"),
        pytest.param(["--json", "{stack}"], id="no-command"),
        pytest.param(["{stack}", "db:list", "--json", "--bogus"], id="bad-command-option"),
        pytest.param(["--json", "status", "nosuch"], id="status-no-stack"),
    ],
)
def test_json_stdout_is_one_document_even_for_usage_errors(kroot, argv):
    stack = kroot.stack("blog", env="DB_NAME=blog\n")
    result = kroot.run(*[a.replace("{stack}", stack) for a in argv])
    assert result.code in (2, 3), result
    data = json.loads(result.stdout)  # exactly one document: json.loads refuses trailing data
    assert data["kind"] == "error" and data["exit_code"] == result.code and data["schema_version"] == 1, data
    assert data["error"] and "error" in result.stderr, result


def test_help_metavars_choices_and_h_everywhere(kroot):
    stack = kroot.stack("blog", env="DB_NAME=blog\n")
    for argv in (["--help"], [stack, "db:export", "-h"], ["init", "--help"], ["status", "-h"], ["cron", "-h"],
                 [stack, "db:import", "--help"]):
        result = kroot.run(*argv)
        assert result.code == 0, result
        assert "Usage:" in result.stdout, result
        assert "<str>" not in result.stdout and "<list[str]>" not in result.stdout and "<path>" not in result.stdout, result
    export = kroot.run(stack, "db:export", "-h")
    assert "plain|custom" in export.stdout, export


def test_run_from_inside_a_stack_directory_hints_root(kroot):
    stack = kroot.stack("blog")
    result = run_kompose(stack, "ps", root=None, cwd=kroot.dir("blog"))
    assert result.code == 3, result
    assert "--root .." in result.stderr, result


# --- 7. dry runs: one line per step, SQL with --verbose ------------------------------------------------


def _db_stack(kroot, pg) -> str:
    return kroot.stack(
        "db", compose="services: {}\n",
        env=(f"DB_CONTAINER={pg.container.name}\nDB_NAME={pg.database}\nDB_USER={pg.user}\n"
             f"DB_PASSWORD={pg.password}\n"),
    )


def test_an_import_dry_run_is_one_line_per_step_and_verbose_shows_the_sql(kroot, pg):
    pg.sql("CREATE TABLE items (id int)")
    stack = _db_stack(kroot, pg)
    assert kroot.run(stack, "db:export").code == 0
    compact = kroot.run("-n", stack, "db:import")
    assert compact.code == 0, compact
    steps = [line for line in compact.stdout.splitlines() if line[:5].strip().rstrip(".").isdigit()]
    body = [line for line in compact.stdout.splitlines() if line.startswith("      ") and not line.strip().startswith("-")
            and "hooks" not in line and "on failure" not in line and "on error" not in line]
    assert steps and not body, f"lines that are not one per step:\n{body}\n{compact}"
    assert "ALLOW_CONNECTIONS" not in compact.stdout and pg.password not in compact.output, compact
    assert "--verbose" in compact.output, compact
    verbose = kroot.run("-n", "--verbose", stack, "db:import")
    assert verbose.code == 0, verbose
    assert "ALLOW_CONNECTIONS false" in verbose.stdout and pg.password not in verbose.output, verbose
    assert len(verbose.stdout.splitlines()) > 2 * len(compact.stdout.splitlines()), (compact, verbose)


# --- 9. shell completion -------------------------------------------------------------------------


def _complete(kroot, words: str) -> list[str]:
    cword = len(words.split()) - (0 if words.endswith(" ") else 1)
    result = run_kompose(root=None, env={"_KOMPOSE_COMPLETE": "complete_bash", "COMP_WORDS": words,
                                         "COMP_CWORD": str(cword), "KOMPOSE_ROOT": str(kroot.path)})
    assert result.code == 0, result
    return result.stdout.split()


def test_shell_completion_completes_stacks_and_commands(kroot):
    blog, beta = kroot.stack("blog"), kroot.stack("beta")
    assert sorted(_complete(kroot, f"kompose {kroot.prefix}b")) == sorted([blog, beta])
    assert _complete(kroot, f"kompose {blog},{kroot.prefix}be") == [f"{blog},{beta}"]
    assert "status" in _complete(kroot, "kompose sta")
    assert _complete(kroot, f"kompose {blog} db:ex") == ["db:export"]
    assert "--install-completion" in _complete(kroot, "kompose --ins")
    shown = run_kompose("--show-completion", "bash", root=None)
    assert shown.code == 0 and "_KOMPOSE_COMPLETE" in shown.stdout, shown


# --- 5. one JSON schema over every command ----------------------------------------------------------

ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?Z$")
DATE_LIKE = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
TIME_KEYS = ("time", "timestamp", "dump_time", "last_drill", "next_run", "due_since", "created", "at")


def _walk(data, path="$"):
    yield path, data
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _walk(value, f"{path}.{key}")
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _walk(value, f"{path}[{index}]")


def test_every_command_prints_one_json_document_of_the_one_schema(kroot, pg):
    pg.sql("CREATE TABLE items (id int)")
    stack = kroot.stack(
        "db", compose="services: {}\n",
        env=(f"DB_CONTAINER={pg.container.name}\nDB_NAME={pg.database}\nDB_USER={pg.user}\n"
             f"DB_PASSWORD={pg.password}\nKOMPOSE_SCHEDULE_DB_EXPORT=\"0 3 * * *\"\n"),
        hooks="hook_pre_db_export() { :; }\n",
    )
    cron_file = kroot.path / "cron.d-kompose"
    commands = {
        "result": [stack, "db:export"],
        "stacks": ["--list"],
        "dumps": [stack, "db:list"],
        "status": ["status"],
        "hooks": [stack, "hooks"],
        "hooks_check": [stack, "hooks:check"],
        "cron": ["cron"],
        "cron_check": ["cron", "--check", "--cron-file", str(cron_file)],
        "plan": ["-n", stack, "db:import"],
        "error": [stack, "db:exprot"],
    }
    seen_stack_keys = {}
    for kind, argv in commands.items():
        result = kroot.run("--json", *argv)
        assert result.code in (0, 1, 2), result
        data = json.loads(result.stdout)
        assert isinstance(data, dict) and data["schema_version"] == 1 and data["kind"] == kind, (kind, data)
        assert pg.password not in result.output, result
        for path, value in _walk(data):
            if isinstance(value, dict):
                for key in value:
                    if value[key] == stack:  # a stack's name is "stack", wherever it appears
                        seen_stack_keys.setdefault(key, path)
                for key in TIME_KEYS:
                    if value.get(key) is not None and not isinstance(value[key], (dict, list)):
                        assert ISO_UTC.match(str(value[key])), f"{kind}: {path}.{key} = {value[key]!r} is not ISO-8601 UTC"
            elif isinstance(value, str) and DATE_LIKE.match(value):
                assert ISO_UTC.match(value), f"{kind}: {path} = {value!r} is not ISO-8601 UTC"
            if isinstance(value, str):
                assert not value.endswith(".partial"), f"{kind}: {path} names a .partial: {value}"
        if kind == "result":
            [outcome] = data["outcomes"]
            assert outcome["stack"] == stack and Path(outcome["file"]).is_file(), outcome
        if kind == "stacks":
            [info] = data["stacks"]
            assert info["engine"] == "postgres" and info["hooks"] == ["pre_db_export"], info
    assert set(seen_stack_keys) == {"stack"}, f"a stack's name under another key: {seen_stack_keys}"


# --- 6. progress on a terminal (a real pty) ---------------------------------------------------------


def _run_in_pty(kroot, *args: str, timeout: float = 180) -> tuple[int, str]:
    """kompose with stdout and stderr on a pseudo-terminal: (exit code, everything it wrote)."""
    import os
    import pty
    import subprocess
    import sys
    import time

    from tests.helpers import kompose_env

    master, slave = pty.openpty()
    env = kompose_env({"TERM": "xterm-256color", "COLUMNS": "150", "LINES": "40"})
    process = subprocess.Popen([sys.executable, "-m", "kompose", "--root", str(kroot.path), *args],
                               stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    code = process.wait(timeout=30)
    return code, b"".join(chunks).decode(errors="replace")


def test_progress_bar_with_total_percent_rate_and_summary_table_in_a_terminal(kroot, pg):
    pg.sql("CREATE TABLE big AS SELECT g AS id, repeat(md5(g::text), 8) AS body FROM generate_series(1, 150000) g")
    stack = _db_stack(kroot, pg)
    code, screen = _run_in_pty(kroot, stack, "db:export", "--transport", "exec")
    assert code == 0, screen
    frames = re.findall(r"(\d+)%", screen)
    assert frames, f"no percent in the terminal output\n{screen[-3000:]}"
    assert re.search(r"[\d.]+/[\d.]+ (kB|MB)", screen), f"no 'done/total' bytes\n{screen[-3000:]}"
    assert re.search(r"[\d.]+ (kB|MB)/s", screen) and "━" in screen, screen[-3000:]
    assert pg.password not in screen
    # an import's bar counts the file it sends
    code, screen = _run_in_pty(kroot, stack, "db:import")
    assert code == 0, screen
    assert re.search(r"\d+%", screen) and re.search(r"[\d.]+/[\d.]+ (kB|MB)", screen), screen[-3000:]
    # the same commands with stdout not a terminal: none of it
    piped = kroot.run(stack, "db:export", "--transport", "exec")
    assert piped.code == 0 and "━" not in piped.output and "\x1b[" not in piped.output, piped
    as_json = kroot.run("--json", stack, "db:export")
    assert as_json.code == 0 and json.loads(as_json.stdout)["kind"] == "result", as_json
    # a multi-stack run ends with a table: stack, operation, result, duration, size
    other = kroot.stack("other")
    code, screen = _run_in_pty(kroot, "*", "config", "-q")
    assert code == 0, screen
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen)
    header = next((line for line in plain.splitlines() if "operation" in line), "")
    assert all(word in header for word in ("stack", "operation", "result", "duration", "size")), plain
    assert re.search(rf"{re.escape(other)}\s+config\s+ok\s+[\d.]+ s", plain), plain


# --- 12. one bad .env line in one stack ------------------------------------------------------------


def test_one_bad_env_line_fails_its_stack_and_the_others_go_on(kroot):
    bad = kroot.stack("bad", env="GOOD=1\nthis is not valid\n")
    good = kroot.stack("good", env="DB_NAME=good\n")
    listed = kroot.run("--list")
    assert listed.code == 1, listed
    assert good in listed.stdout and "database:postgres" in listed.stdout, listed
    assert f"{bad}" in listed.stderr and ".env:2" in listed.stderr, listed
    status = kroot.run("status")
    assert status.code == 1 and good in status.stdout and ".env:2" in status.stderr, status
    as_json = json.loads(kroot.run("--json", "status").stdout)
    errors = {s["stack"]: s["error"] for s in as_json["stacks"]}
    assert errors[good] is None and ".env:2" in errors[bad], as_json
    run = kroot.run("*", "config", "-q")
    assert run.code == 1, run
    assert "1 succeeded, 1 failed of 2 stacks" in run.stdout, run
    assert any(bad in line and ".env:2" in line for line in run.stderr.splitlines() if "✗" in line), run
    alone = kroot.run(bad, "config", "-q")  # alone: a configuration error, nothing runs
    assert alone.code == 2 and ".env:2" in alone.stderr, alone


def test_a_misspelt_kompose_setting_warns_with_the_nearest_name(kroot):
    stack = kroot.stack("blog", env="DB_NAME=blog\nKOMPOSE_KEEP_DALY=3\nKOMPOSE_KEEP_LAST=2\n")
    result = kroot.run("--list")
    assert result.code == 0, result
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, result
    assert "KOMPOSE_KEEP_DALY" in warnings[0] and "did you mean KOMPOSE_KEEP_DAILY?" in warnings[0], result
    assert "KOMPOSE_KEEP_DALY" not in result.stdout and stack in result.stdout, result


# --- 14. smaller ones ------------------------------------------------------------------------------


def test_an_engine_that_is_not_there_is_one_line_naming_the_socket(kroot, tmp_path):
    stack = kroot.stack("db", compose="services: {}\n", env="DB_NAME=db\nDB_CONTAINER=nosuch\n")
    socket_path = tmp_path / "no-engine.sock"
    result = kroot.run(stack, "db:export", env={"DOCKER_HOST": f"unix://{socket_path}"})
    assert result.code == 1, result
    failures = [line for line in result.stderr.splitlines() if "✗" in line]
    assert len(failures) == 1 and str(socket_path) in failures[0] and "no such socket" in failures[0], result
    assert "Connection aborted" not in result.output and "FileNotFoundError" not in result.output, result
    assert "Traceback" not in result.output, result


def test_cron_install_warns_when_no_cron_daemon_is_installed(kroot, tmp_path):
    kroot.stack("db", compose="services: {}\n", env='DB_NAME=db\nKOMPOSE_SCHEDULE_DB_EXPORT="0 3 * * *"\n')
    cron_file = tmp_path / "cron.d-kompose"
    none = kroot.run("cron", "--install", "--cron-file", str(cron_file), env={"KOMPOSE_CRON_DAEMONS": "/nonexistent/cron"})
    assert none.code == 0 and cron_file.is_file(), none
    assert "no cron daemon" in none.stderr and "no cron daemon" not in none.stdout, none
    daemon = tmp_path / "cron"
    daemon.write_text("#!/bin/sh\n")
    found = kroot.run("cron", "--install", "--cron-file", str(cron_file), env={"KOMPOSE_CRON_DAEMONS": str(daemon)})
    assert found.code == 0 and "no cron daemon" not in found.output, found


def test_logs_follow_over_several_stacks_follows_all_of_them_prefixed(kroot, docker_client):
    import signal
    import subprocess
    import sys
    import time

    from tests.helpers import APP_IMAGE, kompose_env

    def compose(word: str) -> str:
        return (f"services:\n  app:\n    image: {APP_IMAGE}\n    pull_policy: never\n    stop_grace_period: 1s\n"
                f"    command: [\"sh\", \"-c\", \"while true; do echo {word}-tick; sleep 0.3; done\"]\n")

    first, second = kroot.stack("one", compose=compose("first")), kroot.stack("two", compose=compose("second"))
    try:
        assert kroot.run("*", "up", "-d").code == 0
        process = subprocess.Popen(
            [sys.executable, "-m", "kompose", "--root", str(kroot.path), "*", "logs", "-f", "--no-log-prefix"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
            env=kompose_env(), start_new_session=True)
        lines: list[str] = []
        deadline = time.monotonic() + 60
        import selectors
        selector = selectors.DefaultSelector()
        selector.register(process.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if selector.select(timeout=1):
                line = process.stdout.readline()
                if not line:
                    break
                lines.append(line)
            seen = {s for s in (first, second) if any(l.startswith(f"{s} | ") and "tick" in l for l in lines)}
            if len(seen) == 2:
                break
        os_pgid = process.pid
        import os
        os.killpg(os_pgid, signal.SIGINT)
        process.communicate(timeout=30)
        assert any(l.startswith(f"{first} | ") and "first-tick" in l for l in lines), "".join(lines)
        assert any(l.startswith(f"{second} | ") and "second-tick" in l for l in lines), "".join(lines)
    finally:
        kroot.run("*", "down")
