"""Issue 16, points 2-4: crontab lines cron takes, stack names that cannot inject lines,
schedules and waits that are bounded. All through the real CLI on a real root."""

from __future__ import annotations

import os
from datetime import datetime
import sys
from pathlib import Path

import pytest

from kompose.errors import ConfigError
from kompose.reports import schedules
from kompose import stacks as stacksmod
from tests.helpers import build_tree, run_kompose


def _one_error_line(result, code: int, words: str) -> None:
    assert result.code == code, result
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and words in errors[0], result
    assert "Traceback" not in result.output


def _many_stacks(tmp_path: Path, count: int, name: str = "stack-with-a-longish-name-{:03d}") -> Path:
    root = tmp_path / "root"
    spec = {".env": 'KOMPOSE_SCHEDULE_DB_EXPORT="0 3 * * *"\n'}
    for number in range(count):
        spec[f"{name.format(number)}/compose.yaml"] = "services: {}"
        spec[f"{name.format(number)}/.env"] = f"DB_NAME=db{number}\n"
    build_tree(root, spec)
    return root


def test_ninety_stacks_on_one_schedule_stay_under_crons_line_limit(tmp_path: Path) -> None:
    root = _many_stacks(tmp_path, 90)
    cron_file = tmp_path / "kompose"
    result = run_kompose("cron", "--install", "--cron-file", str(cron_file), root=root)
    assert result.code == 0, result
    text = cron_file.read_text()
    jobs = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert len(jobs) >= 2  # one line could not hold them all
    assert max(len(line) for line in text.splitlines()) <= schedules.CRON_LINE_MAX
    # every stack is in exactly one line
    named = [name for line in jobs for name in line.split(" db:export ")[0].rsplit(" ", 1)[1].split(",")]
    assert sorted(named) == sorted(f"stack-with-a-longish-name-{n:03d}" for n in range(90))
    check = run_kompose("cron", "--check", "--cron-file", str(cron_file), root=root)
    assert "crontab: ok" in check.stdout, check


def test_cron_check_flags_a_line_cron_would_refuse(tmp_path: Path) -> None:
    root = _many_stacks(tmp_path, 2)
    cron_file = tmp_path / "kompose"
    assert run_kompose("cron", "--install", "--cron-file", str(cron_file), root=root).code == 0
    with open(cron_file, "a") as handle:  # what kompose used to write for 90 stacks
        handle.write("0 3 * * * root /usr/bin/kompose " + ",".join(f"s{n:04d}" for n in range(200)) + " db:export\n")
    check = run_kompose("cron", "--check", "--cron-file", str(cron_file), root=root)
    assert check.code == 1, check
    assert "ignored by cron" in check.stdout and "characters" in check.stdout


def test_a_stack_too_long_for_one_line_is_one_error(tmp_path: Path) -> None:
    root = _many_stacks(tmp_path, 1, name="s" * 200 + "{:03d}")
    result = run_kompose("cron", "--log-dir", str(tmp_path / ("l" * 250) / ("l" * 250)), root=root)
    _one_error_line(result, 2, "characters")


@pytest.mark.parametrize("name, words", [
    ("evil\n* * * * * root touch kompose-pwned\n#", "control character"),
    ("tab\there", "control character"),
    ("a,b", "','"),
    ("-rf", "'-'"),
])
def test_hostile_stack_names_are_left_out_with_one_line(tmp_path: Path, name: str, words: str) -> None:
    root = tmp_path / "root"
    build_tree(root, {".env": 'KOMPOSE_SCHEDULE_DB_EXPORT="0 3 * * *"\n', "good/compose.yaml": "services: {}",
                      "good/.env": "DB_NAME=good\n"})
    (root / name).mkdir()
    (root / name / "compose.yaml").write_text("services: {}")
    (root / name / ".env").write_text("DB_NAME=bad\n")
    assert stacksmod.name_problem(name)
    cron_file = tmp_path / "kompose"
    # a cron daemon "installed" (this test is about names; without one, cron --install warns too)
    result = run_kompose("cron", "--install", "--cron-file", str(cron_file), root=root,
                         env={"KOMPOSE_CRON_DAEMONS": sys.executable})
    assert result.code == 0, result
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1 and words in warnings[0] and "\n" not in warnings[0]
    text = cron_file.read_text()
    jobs = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert len(jobs) == 1 and " good db:export " in jobs[0]
    assert "pwned" not in text
    listing = run_kompose("--list", root=root)
    assert listing.code == 0 and "good" in listing.stdout and "pwned" not in listing.stdout


def test_a_non_utf8_stack_name_with_a_log_file(tmp_path: Path) -> None:
    root = tmp_path / "root"
    build_tree(root, {"good/compose.yaml": "services: {}"})
    bad = os.fsencode(root) + b"/caf\xe9"
    os.mkdir(bad)
    open(bad + b"/compose.yaml", "w").close()
    result = run_kompose("--log-file", str(tmp_path / "log"), "*", "ps", root=root,
                         env={"PATH": "/nonexistent:" + os.environ["PATH"]})
    assert "Traceback" not in result.output
    assert "not UTF-8" in result.stderr
    assert "not UTF-8" in (tmp_path / "log").read_text()


def test_glob_characters_in_a_name_select_exactly_that_stack(tmp_path: Path) -> None:
    root = tmp_path / "root"
    build_tree(root, {"x[1]/compose.yaml": "services: {}", "x1/compose.yaml": "services: {}",
                      "x*/compose.yaml": "services: {}", "xy/compose.yaml": "services: {}"})
    stacks = stacksmod.discover(root)
    assert [s.name for s in stacksmod.select(stacks, "x[1]")] == ["x[1]"]
    assert [s.name for s in stacksmod.select(stacks, "x*")] == ["x*"]
    assert [s.name for s in stacksmod.select(stacks, "x1,x[1]")] == ["x1", "x[1]"]
    assert [s.name for s in stacksmod.select(stacks, "x?")] == ["x*", "x1", "xy"]  # no stack is called x?: a glob


@pytest.mark.parametrize("name", ["a\nb", "a,b", "-x", "tab\tx"])
def test_init_refuses_names_kompose_refuses(tmp_path: Path, name: str) -> None:
    result = run_kompose("init", name, root=tmp_path)
    _one_error_line(result, 2, "init")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("expression", ["0 0 30 2 *", "0 0 31 4 *", "0 0 31 11 *"])
def test_a_schedule_that_never_fires_is_one_error(tmp_path: Path, expression: str) -> None:
    with pytest.raises(ConfigError, match="never fires"):
        schedules.validate(expression, "KOMPOSE_SCHEDULE_DB_EXPORT")
    root = _many_stacks(tmp_path, 1)
    (root / ".env").write_text(f'KOMPOSE_SCHEDULE_DB_EXPORT="{expression}"\n')
    for args in (("status",), ("cron", "--check", "--cron-file", str(tmp_path / "c")), ("cron",)):
        _one_error_line(run_kompose(*args, root=root, timeout=30), 2, "never fires")


def test_leap_day_schedules_still_fire() -> None:
    assert schedules.validate("0 0 29 2 *", "K") == "0 0 29 2 *"
    assert schedules.due_since("0 0 29 2 *", datetime(2026, 3, 1), 3600) == datetime(2024, 2, 29)


@pytest.mark.parametrize("grace", ["inf", "1e12", "nan", "-inf", "-1", "40000000"])
def test_schedule_grace_out_of_bounds_is_one_error(tmp_path: Path, grace: str) -> None:
    root = _many_stacks(tmp_path, 1)
    (root / ".env").write_text(f'KOMPOSE_SCHEDULE_DB_EXPORT="* * * * *"\nKOMPOSE_SCHEDULE_GRACE={grace}\n')
    result = run_kompose("cron", "--check", "--cron-file", str(tmp_path / "c"), root=root, timeout=20)
    _one_error_line(result, 2, "KOMPOSE_SCHEDULE_GRACE")


def test_a_year_of_grace_on_a_minute_schedule_is_quick() -> None:
    now = datetime(2026, 3, 1, 12, 0, 30)
    assert schedules.due_since("* * * * *", now, schedules.MAX_GRACE) == datetime(2025, 2, 28, 12, 0)
    assert schedules.due_since("0 3 * * *", datetime(2026, 3, 2, 4, 0), 3600) == datetime(2026, 3, 2, 3, 0)


@pytest.mark.parametrize("value", ["nan", "-1", "inf", "-inf", "1e300"])
def test_lock_timeout_out_of_bounds_is_one_error(tmp_path: Path, value: str) -> None:
    build_tree(tmp_path, {"app/compose.yaml": "services: {}", "app/.env": "DB_NAME=x\n"})
    _one_error_line(run_kompose("--lock-timeout", value, "app", "db:export", root=tmp_path, timeout=20), 2,
                    "--lock-timeout")


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "0", "1e12", "soon"])
def test_lock_wait_out_of_bounds_is_a_config_error(value: str) -> None:
    from kompose.engines.postgres import sql

    with pytest.raises(ConfigError, match="KOMPOSE_LOCK_WAIT"):
        sql.lock_wait_of({"KOMPOSE_LOCK_WAIT": value})


def test_pg_dump_waits_at_most_the_lock_wait() -> None:
    from kompose.engines.postgres import sql

    conn = sql.connection({"DB_NAME": "app"}, "app")
    assert "--lock-wait-timeout=180000" in sql.pg_dump_argv(conn, "plain")
    conn = sql.connection({"DB_NAME": "app", "KOMPOSE_LOCK_WAIT": "2.5"}, "app")
    argv = sql.pg_dump_argv(conn, "custom")
    assert "--lock-wait-timeout=2500" in argv
    psql = sql.lock_holders_argv(argv)
    assert psql[0] == "psql" and "--dbname=app" in psql and not any("lock-wait" in w for w in psql)
