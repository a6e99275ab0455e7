"""The words of a command line before Typer parses them (kompose/cli/words.py), the JSON schema's
times (kompose/schema.py) and the misspelt-setting check (kompose/env.py)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from kompose.cli.words import check_compose_command, hoist_options, suggestion
from kompose.env import misspelt_setting
from kompose.errors import UsageError
from kompose.schema import document, iso_utc

TABLE = {"--json": False, "-n": False, "--dry-run": False, "--root": True, "-j": True, "--jobs": True, "-e": True,
         "--env": True, "-h": False, "--help": False}


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["blog", "--json", "db:list"], ["--json", "blog", "db:list"]),
        (["--root", "/r", "blog", "-n", "--jobs", "2", "up", "-d"], ["--root", "/r", "-n", "--jobs", "2", "blog", "up", "-d"]),
        (["blog", "-j4", "--env=A=1", "ps"], ["-j4", "--env=A=1", "blog", "ps"]),
        (["blog", "up", "--json"], ["blog", "up", "--json"]),  # after the command: the command's
        (["blog", "--detach", "up"], ["blog", "--detach", "up"]),  # not kompose's: stays (refused later)
        (["status", "--json"], ["status", "--json"]),  # a command without a pattern parses its own
        (["--json", "--list"], ["--json", "--list"]),
        ([], []),
    ],
)
def test_hoist_options_moves_only_kompose_options_between_pattern_and_command(argv, expected):
    assert hoist_options(argv, TABLE) == expected


@pytest.mark.parametrize(
    ("command", "meant"),
    [("db:exprot", "db:export"), ("db:improt", "db:import"), ("hoks", "hooks"), ("hooks:chek", "hooks:check"),
     ("db:nothing", None)],
)
def test_kompose_namespace_typos_are_usage_errors(command, meant):
    with pytest.raises(UsageError) as caught:
        check_compose_command("blog", command)
    assert (f"did you mean {meant}?" in caught.value.message) if meant else "did you mean" not in caught.value.message


@pytest.mark.parametrize("command", ["up", "ps", "logs", "stats", "start", "exec", "config", "export", "frobnicate"])
def test_compose_commands_and_unrelated_words_pass(command):
    check_compose_command("blog", command)  # no error: compose's (or compose's to refuse)


def test_a_command_without_a_pattern_after_a_pattern_says_where_it_goes():
    with pytest.raises(UsageError, match="status takes no pattern before it: kompose status blog"):
        check_compose_command("blog", "status")


def test_suggestion_is_empty_when_nothing_is_close():
    assert suggestion("zzz", ["status", "cron"]) == ""


def test_iso_utc_from_every_time_kompose_has():
    assert iso_utc("2026-12-01T16:32:05+01:00") == "2026-12-01T15:32:05Z"
    assert iso_utc(datetime(2026, 12, 1, 16, 32, 5, tzinfo=timezone.utc)) == "2026-12-01T16:32:05Z"
    assert iso_utc(0) == "1970-01-01T00:00:00Z"
    assert iso_utc(None) is None and iso_utc("not a time") == "not a time"
    naive = datetime(2026, 12, 1, 16, 32, 5)
    assert iso_utc(naive) == naive.astimezone().astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_document_has_the_common_keys_and_converts_nested_times():
    data = document("status", stacks=[{"stack": "blog", "dump_time": "2026-12-01T03:00:00+00:00", "size": 3,
                                       "last_runs": {"db:export": {"at": "2026-12-01T04:00:00+01:00"}}}])
    assert data["schema_version"] == 1 and data["kind"] == "status"
    [row] = data["stacks"]
    assert row["dump_time"] == "2026-12-01T03:00:00Z" and row["size"] == 3
    assert row["last_runs"]["db:export"]["at"] == "2026-12-01T03:00:00Z"


@pytest.mark.parametrize(
    ("key", "meant"),
    [("KOMPOSE_KEEP_DALY", "KOMPOSE_KEEP_DAILY"), ("KOMPOSE_EXPORT_FORMT", "KOMPOSE_EXPORT_FORMAT"),
     ("KOMPOSE_KEEP_DAILY", None), ("KOMPOSE_HOOK_PRE_UP_HTTP", None), ("DB_NAME", None), ("KOMPOSE_WHATEVER", None),
     ("KOMPOSE_TOOL_IMAGE", "KOMPOSE_TOOLS_IMAGE"), ("KOMPOSE_TOOLS_IMAGE", None)],
)
def test_misspelt_settings(key, meant):
    assert misspelt_setting(key) == meant


def test_every_setting_the_settings_table_names_is_known():
    """docs/operations.md's table of settings against env.KNOWN_SETTINGS (KOMPOSE_TOOLS_IMAGE was missing:
    a misspelt one got no "did you mean")."""
    import re
    from pathlib import Path

    from kompose.env import CHECKED_FAMILIES, KNOWN_SETTINGS

    table = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    named = set(re.findall(r"^\| `(KOMPOSE_[A-Z_]+)`", table, re.MULTILINE))
    assert "KOMPOSE_TOOLS_IMAGE" in named
    assert {k for k in named if k not in KNOWN_SETTINGS and not k.startswith(CHECKED_FAMILIES)} == set()
