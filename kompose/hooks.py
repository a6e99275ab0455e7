"""Hook points, their naming, and finding hook functions in hooks.sh without running it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from kompose.errors import ConfigError

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
    """Run ``bash -n`` on a hooks file (unless these bytes passed before). Raises ConfigError with bash's first complaint."""
    from kompose import syntax_cache

    if not hooks_file.is_file():
        return
    try:
        content = hooks_file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{hooks_file}: cannot read: {exc.strerror}") from None
    if syntax_cache.passed(content):
        return
    # bash checks the very bytes that are remembered (from stdin, not by reading the file again)
    result = subprocess.run(["bash", "-n"], input=content, capture_output=True)
    if result.returncode == 0:
        syntax_cache.remember(content)
    else:
        stderr = result.stderr.decode("utf-8", "replace")
        first = next((line for line in stderr.splitlines() if line.strip()), "syntax error")
        raise ConfigError(f"{hooks_file}: syntax error: {first.split(': ', 1)[-1]}")
