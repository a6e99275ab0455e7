"""Fast start: the paths that never talk to the engine import neither the docker SDK nor pydantic."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import build_tree, kompose_env

HEAVY = ("docker", "pydantic", "requests", "urllib3", "rich")


def _imported(args: list[str]) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "kompose", *args],
        capture_output=True, text=True, env=kompose_env(), stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("import time:")]
    return {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in lines}


@pytest.fixture
def root(tmp_path):
    return build_tree(
        tmp_path,
        {
            ".env": "TZ=UTC\n",
            "blog/compose.yaml": "services: {app: {image: kompose/app:latest}}\n",
            "blog/.env": "DB_NAME=blog\nDB_PASSWORD=pw-startup\n",
            "blog/hooks.sh": "hook_pre_up() {\n  echo up\n}\n",
        },
    )


@pytest.mark.parametrize(
    "args",
    [["--help"], ["--version"], ["--list"], ["*", "up", "-d", "--dry-run"], ["blog", "db:export", "--help"]],
    ids=["help", "version", "list", "compose-dry-run", "command-help"],
)
def test_no_heavy_import(root, args):
    imported = _imported(["--root", str(root), *args] if args[0] != "--version" else args)
    assert not imported & set(HEAVY), sorted(imported & set(HEAVY))


def test_plain_coercion_gives_typer_s_answers():
    from pathlib import Path

    from kompose.cli import typer_fast
    from typer.models import OptionInfo

    info = OptionInfo(min=1)
    to_int = typer_fast.converter(int, info)
    assert to_int("4") == 4
    with pytest.raises(ValueError, match="0 is not in the range x>=1"):
        to_int("0")
    with pytest.raises(ValueError, match="'x' is not a valid integer"):
        to_int("x")
    assert typer_fast.converter(float, OptionInfo())("2.5") == 2.5
    assert typer_fast.converter(Path, OptionInfo())("/srv") == Path("/srv")
    assert typer_fast.converter(list[str], OptionInfo())(("a", "b")) == ["a", "b"]
    assert typer_fast.converter(bool, OptionInfo())("yes") is True
    assert typer_fast.converter(bytes, OptionInfo()) is None  # typer's own coercion


# --- a bare PATTERN COMMAND skips typer (cli/fast.py): its reading must be typer's own

FAST = [
    ["blog", "db:export"],
    ["*", "db:import"],
    ["--root", "/srv/stacks", "blog", "db:rollback"],
    ["--root=/srv/stacks", "-n", "--json", "-e", "A=1", "--env=B=2", "--env", "C=3", "-j", "3", "--jobs=2",
     "--lock-timeout", "2.5", "--network", "net", "--log-file", "/tmp/kompose.log", "--no-color", "--debug", "-v",
     "a,b", "db:cleanup"],
    ["--dry-run", "--verbose", "--lock-timeout=0", "b*", "db:verify"],
    ["--jobs", "04", "x", "db:push"],
    ["--network=", "x", "db:pull"],
]
TYPER = [
    ["--help"], ["--version"], ["--list"], ["status"], ["cron", "--check"], ["blog"], ["blog", "up", "-d"],
    ["blog", "up"], ["blog", "db:list"], ["blog", "hooks"], ["blog", "db:export", "--format", "custom"],
    ["blog", "--json", "db:export"], ["-nv", "blog", "db:export"], ["-eA=1", "blog", "db:export"],
    ["--jobs", "0", "blog", "db:export"], ["-j", "x", "blog", "db:export"], ["--lock-timeout", "x", "b", "db:export"],
    ["--lock-timeout", "nan", "b", "db:export"], ["--root"], ["--root", "", "b", "db:export"], ["--", "b", "db:export"],
    ["--nope", "b", "db:export"], ["b", "db:export", "--"], ["b", "db:exprot"], ["-h", "b", "db:export"],
]
NAMES = ("pattern", "command", "args", "root", "dry_run", "verbose", "env", "network", "json_output", "no_color",
         "debug", "list_stacks", "lock_timeout", "log_file", "jobs")


def _typer_reads(argv, monkeypatch, environ):
    """What typer hands cli/run.run for ``argv`` (cli/app.main's own parse, run() replaced)."""
    import typer

    from kompose.cli import app, typer_fast
    from kompose.cli.words import hoist_options, option_table

    for key in ("KOMPOSE_ROOT",):
        monkeypatch.delenv(key, raising=False)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    seen = {}
    monkeypatch.setattr(app, "run", lambda *values: seen.update(zip(NAMES, values)) or 0)
    command = typer.main.get_command(app.app)
    typer_fast.install(command)
    command.main(args=hoist_options(list(argv), option_table(command)), prog_name="kompose", standalone_mode=False)
    return {key: value for key, value in seen.items() if value not in (None, False, [])}


@pytest.mark.parametrize("environ", [{}, {"KOMPOSE_ROOT": "/from/env"}, {"KOMPOSE_ROOT": ""}],
                         ids=["no-env", "root-env", "empty-root-env"])
@pytest.mark.parametrize("argv", FAST, ids=lambda a: " ".join(a))
def test_a_bare_command_is_read_as_typer_reads_it(argv, environ, monkeypatch):
    from kompose.cli import fast

    values = fast.parse(argv, environ)
    assert values is not None, argv
    defaults = {"dry_run": False, "verbose": False, "json_output": False, "no_color": False, "debug": False,
                "list_stacks": False, "lock_timeout": 0.0, "jobs": 1}
    mine = {key: value for key, value in {**defaults, **values}.items() if value not in (None, False, [])}
    assert mine == _typer_reads(argv, monkeypatch, environ)


@pytest.mark.parametrize("argv", TYPER, ids=lambda a: " ".join(a) or "empty")
def test_anything_else_goes_to_typer(argv):
    from kompose.cli import fast

    assert fast.parse(argv, {}) is None
    assert fast.parse(["blog", "db:export"], {"_KOMPOSE_COMPLETE": "complete_bash"}) is None


def test_the_bare_answers_are_typer_s():
    from kompose.cli.commands import COMMANDS, parse_command_args

    bare = [c for c in COMMANDS.values() if c.bare is not None]
    assert {c.name for c in bare} == {c.name for c in COMMANDS.values() if c.plan}
    for spec in bare:
        assert parse_command_args(spec.name, [], spec.args) == spec.bare, spec.name


def test_a_bare_export_never_imports_typer(root):
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "kompose", "--root", str(root), "-n", "blog", "db:export"],
        capture_output=True, text=True, env=kompose_env({"DOCKER_HOST": "unix:///nonexistent.sock"}),
        stdin=subprocess.DEVNULL,
    )
    lines = [line for line in result.stderr.splitlines() if line.startswith("import time:")]
    assert lines, result.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in lines}
    assert "typer" not in imported and "kompose" in imported, result.stderr[-2000:]
    assert "Docker engine at unix:///nonexistent.sock" in result.stderr + result.stdout  # said, as ever
