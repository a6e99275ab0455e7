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
