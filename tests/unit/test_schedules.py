"""Schedules: real crontab expressions through croniter, crontab blocks, `kompose cron` on a real root."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from kompose.reports import schedules
from kompose.errors import ConfigError
from kompose.reports.schedules import CronJob, Schedule
from tests.helpers import build_tree, run_kompose


@pytest.mark.parametrize(
    "expression, after, expected",
    [
        ("0 3 * * *", datetime(2026, 3, 1, 12, 0), datetime(2026, 3, 2, 3, 0)),
        ("0 3 * * *", datetime(2026, 3, 1, 2, 59), datetime(2026, 3, 1, 3, 0)),
        ("*/15 * * * *", datetime(2026, 3, 1, 12, 1), datetime(2026, 3, 1, 12, 15)),
        ("30 4 * * 0", datetime(2026, 3, 2, 0, 0), datetime(2026, 3, 8, 4, 30)),  # the next Sunday
        ("0 2 1 * *", datetime(2026, 1, 31, 3, 0), datetime(2026, 2, 1, 2, 0)),
        ("@daily", datetime(2026, 3, 1, 12, 0), datetime(2026, 3, 2, 0, 0)),
        ("0 3 * * mon-fri", datetime(2026, 3, 6, 4, 0), datetime(2026, 3, 9, 3, 0)),  # Friday -> Monday
    ],
)
def test_next_run(expression: str, after: datetime, expected: datetime) -> None:
    assert schedules.next_run(schedules.validate(expression, "KEY"), after) == expected


@pytest.mark.parametrize(
    "expression, message",
    [
        ("0 3 * *", "five fields"),
        ("0 3 * * * *", "five fields"),
        ("61 * * * *", "not a valid crontab expression"),
        ("0 25 * * *", "not a valid crontab expression"),
        ("0 3 * * funday", "not a valid crontab expression"),
        ("@reboot", "unknown macro"),
        ("every day", "five fields"),
    ],
)
def test_invalid_expressions_name_the_key(expression: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        schedules.validate(expression, "KOMPOSE_SCHEDULE_DB_EXPORT")
    assert caught.value.message.startswith("KOMPOSE_SCHEDULE_DB_EXPORT=")


def test_due_since_leaves_a_running_job_its_grace() -> None:
    now = datetime(2026, 3, 2, 3, 10)  # ten minutes after tonight's 03:00 run started
    assert schedules.due_since("0 3 * * *", now, grace=3600) == datetime(2026, 3, 1, 3, 0)
    assert schedules.due_since("0 3 * * *", datetime(2026, 3, 2, 4, 30), grace=3600) == datetime(2026, 3, 2, 3, 0)
    # a 15-minute schedule gets at most its period as grace
    now = datetime(2026, 3, 2, 12, 20)
    grace = schedules.grace_of({}, "*/15 * * * *", now)
    assert grace == 900
    assert schedules.due_since("*/15 * * * *", now, grace) == datetime(2026, 3, 2, 12, 0)


def test_stack_schedules_only_database_stacks_and_off() -> None:
    env = {"DB_NAME": "app", "KOMPOSE_SCHEDULE_DB_EXPORT": "0  3 * * *", "KOMPOSE_SCHEDULE_DB_DRILL": "off"}
    assert schedules.stack_schedules("app", env) == [
        Schedule("app", "db:export", "0 3 * * *", "KOMPOSE_SCHEDULE_DB_EXPORT")
    ]
    assert schedules.stack_schedules("web", {"KOMPOSE_SCHEDULE_DB_EXPORT": "0 3 * * *"}) == []
    with pytest.raises(ConfigError, match="unknown operation DB_BACKUP"):
        schedules.stack_schedules("app", {"KOMPOSE_SCHEDULE_DB_BACKUP": "0 3 * * *"})


def test_jobs_group_stacks_by_operation_and_expression() -> None:
    found = [
        Schedule("blog", "db:export", "0 3 * * *", "k"), Schedule("shop", "db:cleanup", "@daily", "k"),
        Schedule("shop", "db:export", "0 3 * * *", "k"), Schedule("wiki", "db:export", "30 1 * * *", "k"),
    ]
    jobs = schedules.group(found)
    assert [(j.command, j.expression, j.stacks) for j in jobs] == [
        ("db:export", "0 3 * * *", ["blog", "shop"]),
        ("db:export", "30 1 * * *", ["wiki"]),
        ("db:cleanup", "@daily", ["shop"]),
    ]


def test_block_lines_and_replacement_keep_everything_else() -> None:
    root = Path("/srv/st acks")
    block = schedules.render_block([CronJob("0 3 * * *", "db:export", ["a", "b"])], root, Path("/var/log/k"),
                                   ["/opt/kompose/bin/kompose"], "root")
    assert block[2] == ("0 3 * * * root /opt/kompose/bin/kompose --root '/srv/st acks' --log-file "
                        "/var/log/k/db-export.log --no-color --lock-timeout 3600 a,b db:export >/dev/null 2>&1")
    other = "MAILTO=ops@example.org\n# >>> kompose /srv/other >>>\nx\n# <<< kompose /srv/other <<<\n5 * * * * root true\n"
    once = schedules.replace_block(other, root, block)
    twice = schedules.replace_block(once, root, block)
    assert once == twice
    assert once.count(schedules.begin_marker(root)) == 1
    assert once.startswith(other)  # appended; the other root's block and foreign lines untouched
    changed = schedules.replace_block(once, root, block[:2] + block[3:])
    assert "db:export" not in changed.split(schedules.begin_marker(root))[1]
    assert changed.startswith(other)
    assert schedules.replace_block(once, root, []) == other
    with pytest.raises(Exception, match="without its end line"):
        schedules.replace_block(schedules.begin_marker(root) + "\n", root, block)


def test_installed_block_is_the_same_whichever_way_kompose_was_started() -> None:
    jobs = [CronJob("0 3 * * *", "db:export", ["a"])]
    via_script = schedules.render_block(jobs, Path("/srv"), Path("/l"), ["/opt/kompose/bin/kompose"], "root")
    via_module = schedules.render_block(jobs, Path("/srv"), Path("/l"), ["/usr/bin/python3", "-m", "kompose"], "root")
    assert schedules.same_block(via_script, via_module)
    other = schedules.render_block([CronJob("0 4 * * *", "db:export", ["a"])], Path("/srv"), Path("/l"),
                                   ["/opt/kompose/bin/kompose"], "root")
    assert not schedules.same_block(via_script, other)


def test_percent_signs_are_escaped_for_cron() -> None:
    block = schedules.render_block([CronJob("@daily", "db:export", ["a"])], Path("/srv/100%"), Path("/l"), ["k"], None)
    assert "/srv/100\\%" in block[2]
    assert block[2].startswith("@daily k ")  # no user field in a user crontab


def _root(tmp_path: Path) -> Path:
    return build_tree(tmp_path / "root", {
        ".env": 'KOMPOSE_SCHEDULE_DB_CLEANUP="15 4 * * *"\n',
        "app/compose.yaml": "services: {}",
        "app/.env": 'DB_NAME=app\nKOMPOSE_SCHEDULE_DB_EXPORT="0 3 * * *"\n',
        "shop/compose.yaml": "services: {}",
        "shop/.env": 'DB_NAME=shop\nKOMPOSE_SCHEDULE_DB_EXPORT="0 3 * * *"\nKOMPOSE_SCHEDULE_DB_CLEANUP=off\n',
        "web/compose.yaml": "services: {}",
    })


def test_cron_prints_lines_with_absolute_paths(tmp_path: Path) -> None:
    root = _root(tmp_path)
    result = run_kompose("cron", "--log-dir", "logs", root=root)
    assert result.code == 0, result
    lines = [line for line in result.lines if not line.startswith("#")]
    assert len(lines) == 2
    export, cleanup = lines
    assert export.startswith("0 3 * * * ")
    assert f"--root {root.resolve()} " in export and " app,shop db:export " in export
    assert f"--log-file {Path('logs').absolute()}/db-export.log" in export
    assert cleanup.startswith("15 4 * * * ") and " app db:cleanup " in cleanup  # shop turned it off, web has no DB
    command = export.split()[6] if export.split()[5] != "--root" else export.split()[5]
    assert Path(command).is_absolute()


def test_cron_install_twice_leaves_one_block(tmp_path: Path) -> None:
    root = _root(tmp_path)
    cron_file = tmp_path / "cron.d" / "kompose"
    cron_file.parent.mkdir()
    cron_file.write_text("# someone else's line\n17 * * * * root /bin/true\n")
    first = run_kompose("cron", "--install", "--cron-file", str(cron_file), root=root)
    second = run_kompose("cron", "--install", root=root, env={"KOMPOSE_CRON_FILE": str(cron_file)})
    assert first.code == 0 and second.code == 0, (first, second)
    assert "up to date" in second.stdout
    text = cron_file.read_text()
    assert text.count(">>> kompose") == 1 and text.count("<<< kompose") == 1
    assert text.startswith("# someone else's line\n17 * * * * root /bin/true\n")
    assert oct(cron_file.stat().st_mode & 0o777) == "0o644"

    # a schedule changes: the block is replaced, not added to
    (root / "app/.env").write_text('DB_NAME=app\nKOMPOSE_SCHEDULE_DB_EXPORT="0 2 * * *"\n')
    check = run_kompose("cron", "--check", "--cron-file", str(cron_file), root=root)
    assert check.code == 1 and "out of date" in check.stdout
    assert run_kompose("cron", "--install", "--cron-file", str(cron_file), root=root).code == 0
    text = cron_file.read_text()
    assert text.count(">>> kompose") == 1
    assert "0 2 * * * " in text and "0 3 * * * " in text  # app at 2, shop still at 3


def test_invalid_schedule_is_one_clear_error(tmp_path: Path) -> None:
    root = _root(tmp_path)
    (root / "app/.env").write_text('DB_NAME=app\nKOMPOSE_SCHEDULE_DB_EXPORT="0 27 * * *"\n')
    for args in (("cron",), ("cron", "--install", "--cron-file", str(tmp_path / "c")), ("status",)):
        result = run_kompose(*args, root=root)
        assert result.code == 2, result
        assert result.stderr.strip().splitlines() == [
            "error: KOMPOSE_SCHEDULE_DB_EXPORT='0 27 * * *' is not a valid crontab expression: "
            + result.stderr.split("expression: ", 1)[1].strip()
        ]
        assert "Traceback" not in result.output
    assert not (tmp_path / "c").exists()
