"""Declarative hooks: HTTP requests, TCP checks and container commands defined by .env keys.

A stack's own ``.env`` (or, for the run-wide hooks, the root's ``.env``) defines them::

    KOMPOSE_HOOK_<POINT>_<KIND>[_<N>]=<definition>
    KOMPOSE_HOOK_<POINT>_<KIND>[_<N>]_TIMEOUT=<seconds>

POINT is a hook point in capitals (PRE_DB_EXPORT, POST_UP, ON_ERROR, PRE_RUN, ...),
KIND one of HTTP, TCP, EXEC, N an optional number for several hooks of one kind at
one point (unnumbered first, then by number). Definitions:

    HTTP   GET <url>  |  POST <url> [<body>]     (body placeholders: {{stack}}, {{status}}, ...)
    TCP    <host>:<port>                         (open within the timeout)
    EXEC   <service-or-container> <command> [<arg>...]   (shell words, run without a shell)

Parsing is pure: nothing here connects anywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Mapping

from kompose.errors import ConfigError
from kompose.hooks.kinds import DECLARED, ORDER
from kompose.env import mask_url  # noqa: F401  (hooks' URLs are masked as every URL is)
from kompose.hooks.kinds.http import PLACEHOLDER as _PLACEHOLDER, render_body  # noqa: F401
from kompose.hooks.points import RUN_POINTS, timeout

PREFIX = "KOMPOSE_HOOK_"
_KEY = re.compile(
    r"^KOMPOSE_HOOK_(?P<point>(?:PRE|POST)_[A-Z0-9_]+?|ON_ERROR)_(?P<kind>" + "|".join(k.upper() for k in DECLARED) + ")"
    r"(?:_(?P<number>\d+))?(?P<timeout>_TIMEOUT)?$"
)
# the other KOMPOSE_HOOK_* settings; any other key with the prefix is a typo worth reporting
_SETTING = re.compile(r"^KOMPOSE_HOOK_TIMEOUT(?:_(?:(?:PRE|POST)_[A-Z0-9_]+|ON_ERROR))?$")

# What a POST body may use as {{name}}; the same keys make the JSON summary sent by
# a POST without a body. Stack hooks and run-wide hooks fill different subsets.
STACK_FIELDS = ("run_id", "command", "hook", "stack", "status", "failed_step", "error", "dump_file")
RUN_FIELDS = ("run_id", "command", "hook", "status", "failed_step", "error", "stacks", "succeeded", "failed", "skipped")


@dataclass(frozen=True)
class Declared:
    """One declarative hook as defined; ``timeout`` is None when its own _TIMEOUT key is absent.
    ``spec`` holds what its kind's parse() read from the value (method, url, host, port, …),
    readable as attributes: ``declared.host``."""

    key: str
    point: str  # lower case: pre_db_export
    kind: str  # a kind of hooks/kinds with a parse(): http | tcp | exec
    number: int  # 0 for an unnumbered key
    spec: tuple[tuple[str, object], ...] = ()
    timeout: tuple[str, str] | None = None  # (key, raw value), resolved with hooks.timeout()

    def __getattr__(self, name: str):
        for key, value in object.__getattribute__(self, "spec"):
            if key == name:
                return value
        raise AttributeError(name)


def parse(values: Mapping[str, str], source: str, run_wide: bool = False) -> tuple[list[Declared], list[str]]:
    """The declarative hooks among ``values`` (the keys one .env file sets), sorted by point,
    kind order and number, and the problems found (messages naming ``source`` and the key).

    ``run_wide`` is for the root .env: its points are pre_run, post_run and on_error, and
    exec hooks need a stack, so they are refused there.
    """
    fields = RUN_FIELDS if run_wide else STACK_FIELDS
    found: dict[str, Declared] = {}
    timeouts: dict[str, tuple[str, str]] = {}
    problems: list[str] = []
    for key, value in values.items():
        if not key.startswith(PREFIX) or _SETTING.match(key):
            continue
        match = _KEY.match(key)
        if not match:
            problems.append(f"{source}: {key}: unknown hook key (expected KOMPOSE_HOOK_<POINT>_<HTTP|TCP|EXEC>[_<N>])")
            continue
        base = key[: -len("_TIMEOUT")] if match.group("timeout") else key
        if match.group("timeout"):
            timeouts[base] = (key, value)
            continue
        point, kind = match.group("point").lower(), match.group("kind").lower()
        try:
            if run_wide and kind == "exec":
                raise ConfigError(f"{key}: exec hooks run in a stack's container; define them in the stack's .env")
            if run_wide and point not in RUN_POINTS:
                raise ConfigError(
                    f"{key}: the root .env holds run-wide hooks only (PRE_RUN, POST_RUN, ON_ERROR); "
                    "define stack hooks in each stack's .env"
                )
            if not value.strip():
                raise ConfigError(f"{key} is empty")
            spec = DECLARED[kind].parse(key, value, fields)
        except ConfigError as exc:
            problems.append(f"{source}: {exc.message}")
            continue
        found[key] = Declared(key, point, kind, int(match.group("number") or 0), tuple(spec.items()))
    for base, (key, raw) in timeouts.items():
        if base not in found:
            if not any(p.startswith(f"{source}: {base}") for p in problems):
                problems.append(f"{source}: {key} has no hook {base} to apply to")
            continue
        try:
            timeout({}, None, (key, raw))
        except ConfigError as exc:
            problems.append(f"{source}: {exc.message}")
            continue
        found[base] = replace(found[base], timeout=(key, raw))
    ordered = sorted(found.values(), key=lambda d: (d.point, ORDER.index(d.kind), d.number))
    return ordered, problems


def parse_strict(values: Mapping[str, str], source: str, run_wide: bool = False) -> list[Declared]:
    """Like parse(), but raises ConfigError with the first problem."""
    declared, problems = parse(values, source, run_wide)
    if problems:
        raise ConfigError(problems[0])
    return declared
