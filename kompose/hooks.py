"""Hook points, their naming, and finding hook functions in hooks.sh without running it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from typing import Mapping

from kompose.errors import ConfigError

DEFAULT_HOOK_TIMEOUT = 600.0

# `hook_x() {`, `function hook_x {`, `function hook_x() {` at the start of a line
_FUNCTION = re.compile(r"^[ \t]*(?:function[ \t]+)?(hook_[A-Za-z0-9_]+)[ \t]*(?:\([ \t]*\))?[ \t]*(?:\{|$)", re.MULTILINE)


def point_name(command: str) -> str:
    """The hook-point name for a command: 'db:export' -> 'db_export', 'up' -> 'up'."""
    return re.sub(r"[^A-Za-z0-9_]", "_", command)


def function_name(point: str) -> str:
    return f"hook_{point}"


def find_functions(hooks_file: Path) -> list[str]:
    """Names of the hook_* functions a hooks.sh defines, read statically (never sourced)."""
    try:
        text = hooks_file.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    found = []
    for match in _FUNCTION.finditer(text):
        if match.group(1) not in found:
            found.append(match.group(1))
    return found


def check_syntax(hooks_file: Path) -> None:
    """Run ``bash -n`` on a hooks file. Raises ConfigError with bash's first complaint."""
    if not hooks_file.is_file():
        return
    result = subprocess.run(
        ["bash", "-n", str(hooks_file)], stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace"
    )
    if result.returncode != 0:
        first = next((line for line in result.stderr.splitlines() if line.strip()), "syntax error")
        raise ConfigError(f"{hooks_file}: syntax error: {first.split(': ', 1)[-1]}")


def hook_timeout(env: Mapping[str, str]) -> float:
    """Seconds a hook may run: KOMPOSE_HOOK_TIMEOUT, else 600. Raises ConfigError for a bad value."""
    raw = env.get("KOMPOSE_HOOK_TIMEOUT", "")
    if not raw:
        return DEFAULT_HOOK_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"KOMPOSE_HOOK_TIMEOUT={raw!r} is not a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise ConfigError(f"KOMPOSE_HOOK_TIMEOUT={raw!r} must be a positive number of seconds")
    return value
