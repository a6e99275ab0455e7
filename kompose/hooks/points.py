"""Hook points, their order and failure policy, time limits, and finding hook functions in hooks.sh
without running it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from kompose.errors import ConfigError

# A function definition at the start of a line, as bash reads one: `hook_x() {`,
# `function hook_x {`, `function hook_x() {`, a body in a subshell `hook_x() (`, or the
# body on a later line (`hook_x()` alone, or followed by a comment). Without the
# `function` keyword the `()` is what makes it a definition: `hook_x` alone or
# `hook_x {` is a call, not a definition.
_FUNCTION = re.compile(
    r"^[ \t]*(?:function[ \t]+|(?=hook_[A-Za-z0-9_]*[ \t]*\())"
    r"(hook_[A-Za-z0-9_]+)[ \t]*(?:\([ \t]*\))?[ \t\r]*(?:[{(#]|$)",
    re.MULTILINE,
)

DEFAULT_TIMEOUT = 600.0

# The kinds of hook, in the order they run at one hook point: checks that gate the
# point first, then the user's own script (which may leave values in the context for
# the others), the database, the containers, and notifications last (they can report
# what the others did).

# When post hooks run: only after the operation succeeded, or after a failure too.
POST_POLICIES = ("success", "always")

# Hook points of the root hooks.sh / root .env, once per invocation.
RUN_POINTS = ("pre_run", "post_run", "on_error")


@dataclass(frozen=True)
class PointInfo:
    """What the documentation, `kompose hooks` and `kompose init` say about one hook point."""

    point: str
    when: str
    args: str = ""
    variables: str = ""


# The hook points of kompose's own operations, in the order they can run.
# Compose commands add pre_<cmd> / post_<cmd> for any <cmd>.
OPERATION_POINTS: tuple[PointInfo, ...] = (
    PointInfo("pre_db_export", "before pg_dump", "",
              "KOMPOSE_DUMP_FILE (the name the dump will get), KOMPOSE_DUMP_TIMESTAMP (the timestamp in that name)"),
    PointInfo("post_db_export", "after the dump is complete and has its final name", "<dump-file>",
              "KOMPOSE_DUMP_FILE, KOMPOSE_DUMP_TIMESTAMP"),
    PointInfo("pre_db_push", "before a dump is copied into a restic repository (db:export, db:push; once per "
              "repository)", "<dump-file> <repository (masked)>", "KOMPOSE_DUMP_FILE"),
    PointInfo("post_db_push", "after the copy into that repository succeeded", "<dump-file> <repository (masked)>",
              "KOMPOSE_DUMP_FILE"),
    PointInfo("pre_db_import", "before anything is restored", "<dump-file>", "KOMPOSE_DUMP_FILE"),
    PointInfo(
        "pre_swap", "after the restore into the temporary database, before it replaces the live one",
        "<dump-file> <temp-db>", "KOMPOSE_DUMP_FILE, KOMPOSE_DB (the temporary database), KOMPOSE_DB_CONTAINER",
    ),
    PointInfo("post_db_import", "after the swap (or the --in-place restore)", "<dump-file>", "KOMPOSE_DUMP_FILE"),
    PointInfo("pre_db_rollback", "before the previous database is swapped back"),
    PointInfo("post_db_rollback", "after the rollback swap"),
    PointInfo("pre_db_cleanup", "before old dumps are removed"),
    PointInfo("post_db_cleanup", "after old dumps were removed"),
    PointInfo("pre_db_verify", "before db:verify re-checks dumps"),
    PointInfo("post_db_verify", "after every checked dump passed"),
    PointInfo(
        "drill", "db:drill: after the restore into the drill database, as its smoke test (SQL hooks run there)",
        "<dump-file> <drill-db>", "KOMPOSE_DUMP_FILE, KOMPOSE_DB (the drill database), KOMPOSE_DB_CONTAINER",
    ),
    PointInfo("pre_<cmd>", "before `docker compose <cmd>` (any compose command: up, down, pull, ...)", "<cmd> <compose args>"),
    PointInfo("post_<cmd>", "after `docker compose <cmd>`", "<cmd> <compose args>"),
    PointInfo(
        "on_error", "after the stack's operation or one of its hooks failed (after the clean-up and post hooks)",
        "", "KOMPOSE_FAILED_STEP, KOMPOSE_ERROR",
    ),
)

RUN_POINT_INFO: tuple[PointInfo, ...] = (
    PointInfo("pre_run", "once, before the first stack", "<command> <args>", "KOMPOSE_STACKS"),
    PointInfo(
        "post_run", "once, after the last stack (only when every stack succeeded, unless KOMPOSE_POST_POLICY=always)",
        "<command> <args>", "KOMPOSE_STACKS, KOMPOSE_SUCCEEDED, KOMPOSE_FAILED, KOMPOSE_SKIPPED, KOMPOSE_STATUS",
    ),
    PointInfo(
        "on_error", "once, after the last stack, when a stack or a run-wide hook failed", "<command> <args>",
        "KOMPOSE_STACKS, KOMPOSE_SUCCEEDED, KOMPOSE_FAILED, KOMPOSE_SKIPPED, KOMPOSE_FAILED_STEP, KOMPOSE_ERROR",
    ),
)


def point_name(command: str) -> str:
    """The hook-point name for a command: 'db:export' -> 'db_export', 'up' -> 'up'."""
    return re.sub(r"[^A-Za-z0-9_]", "_", command)


def function_name(point: str) -> str:
    return f"hook_{point}"


def is_point(point: str) -> bool:
    """True for a name a hook can be attached to: pre_<x>, post_<x>, on_error, or drill (db:drill's smoke test)."""
    return point in ("on_error", "drill") or bool(re.fullmatch(r"(pre|post)_[a-z0-9_]+", point))


def sort_points(points) -> list[str]:
    """Points in the order they can run: kompose's operations, then compose commands, on_error last."""
    known = [info.point for info in OPERATION_POINTS] + list(RUN_POINTS)

    def key(point: str):
        if point == "on_error":
            return (2, "", 0)
        if point in known:
            return (0, "", known.index(point))
        verb = point.split("_", 1)[1] if "_" in point else point
        return (1, verb, 0 if point.startswith("pre_") else 1)

    return sorted(set(points), key=key)


def find_functions(hooks_file: Path) -> list[str]:
    """Names of the hook_* functions a hooks.sh defines, read statically (never sourced)."""
    if not hooks_file.is_file():  # missing, a directory, or a FIFO (which would hang the read)
        return []
    try:
        text = hooks_file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    found = []
    for match in _FUNCTION.finditer(text):
        if match.group(1) not in found:
            found.append(match.group(1))
    return found


_TOP_EXIT = re.compile(r"(?:^|[;&|]\s*|\bthen\s+|\belse\s+|\bdo\s+)(?P<word>exit|exec(?=\s+[^\s<>&0-9{]))\b")


def top_level_exits(hooks_file: Path) -> list[int]:
    """Lines of a hooks file that run ``exit`` (or ``exec`` of a program) outside any function
    body: sourcing the file then ends the shell, and no hook of it ever runs. Read
    statically, by counting braces outside quotes and comments (never sourced)."""
    if not hooks_file.is_file():
        return []
    try:
        text = hooks_file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    found, depth = [], 0
    for number, line in enumerate(text.splitlines(), 1):
        code = _code_of(line)
        if depth == 0 and _TOP_EXIT.search(code.strip()):
            found.append(number)
        depth = max(0, depth + code.count("{") - code.count("}"))
    return found


def _code_of(line: str) -> str:
    """A line without its quoted strings and comment (a rough shell lexer: enough to count braces)."""
    out, quote = [], ""
    for index, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
            continue
        if ch in "'\"":
            quote = ch
            continue
        if ch == "#" and (index == 0 or line[index - 1].isspace()):
            break
        out.append(ch)
    return "".join(out)


def syntax_error(hooks_file: Path) -> str | None:
    """bash's first complaint about a hooks file (``bash -n``), or None when it parses.

    Bytes that passed before (with the same bash) are not checked again: see syntax_cache.
    """
    from kompose.hooks import syntax_cache

    if not hooks_file.is_file():  # a FIFO or a directory is never opened (a FIFO would hang)
        return f"{hooks_file}: not a regular file" if hooks_file.exists() else None
    try:
        content = hooks_file.read_bytes()
    except OSError as exc:
        return f"{hooks_file}: cannot read: {exc.strerror}"
    if syntax_cache.passed(content):
        return None
    # bash checks the very bytes that are remembered (from stdin, not by reading the file again)
    from kompose.host.processes import run_captured

    result = run_captured(["bash", "-n"], input=content, what="bash -n")
    if result.exit_code == 0:
        syntax_cache.remember(content)
        return None
    stderr = result.stderr
    first = next((line for line in stderr.splitlines() if line.strip()), "syntax error")
    return f"{hooks_file}: syntax error: {first.split(': ', 1)[-1]}"


def check_syntax(hooks_file: Path) -> None:
    """Run ``bash -n`` on a hooks file. Raises ConfigError with bash's first complaint."""
    problem = syntax_error(hooks_file)
    if problem:
        raise ConfigError(problem)


# ------------------------------------------------------------- settings


def _seconds(key: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{key}={raw!r} is not a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise ConfigError(f"{key}={raw!r} must be a positive number of seconds")
    return value


def timeout_key(point: str) -> str:
    """The per-point override: pre_db_export -> KOMPOSE_HOOK_TIMEOUT_PRE_DB_EXPORT."""
    return f"KOMPOSE_HOOK_TIMEOUT_{point.upper()}"


def timeout(env: Mapping[str, str], point: str | None = None, own: tuple[str, str] | None = None) -> float:
    """A hook's time limit in seconds; the first that is set wins: the hook's ``own`` (key, value),
    KOMPOSE_HOOK_TIMEOUT_<POINT>, KOMPOSE_HOOK_TIMEOUT, 600.

    Raises ConfigError for a value that is not a positive number.
    """
    if own and own[1]:
        return _seconds(*own)
    if point:
        key = timeout_key(point)
        if env.get(key, ""):
            return _seconds(key, env[key])
    if env.get("KOMPOSE_HOOK_TIMEOUT", ""):
        return _seconds("KOMPOSE_HOOK_TIMEOUT", env["KOMPOSE_HOOK_TIMEOUT"])
    return DEFAULT_TIMEOUT


def post_policy(env: Mapping[str, str]) -> str:
    """KOMPOSE_POST_POLICY: 'success' (default) or 'always'. Raises ConfigError for anything else."""
    value = (env.get("KOMPOSE_POST_POLICY", "") or "success").strip().lower()
    if value not in POST_POLICIES:
        raise ConfigError(f"KOMPOSE_POST_POLICY={value!r}: choose one of {', '.join(POST_POLICIES)}")
    return value
