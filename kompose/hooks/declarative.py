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

import json
import re
import shlex
from dataclasses import dataclass, replace
from typing import Mapping
from urllib.parse import urlsplit

from kompose.errors import ConfigError
from kompose.hooks.points import KINDS, RUN_POINTS, timeout

PREFIX = "KOMPOSE_HOOK_"
_KEY = re.compile(
    r"^KOMPOSE_HOOK_(?P<point>(?:PRE|POST)_[A-Z0-9_]+?|ON_ERROR)_(?P<kind>HTTP|TCP|EXEC)"
    r"(?:_(?P<number>\d+))?(?P<timeout>_TIMEOUT)?$"
)
# the other KOMPOSE_HOOK_* settings; any other key with the prefix is a typo worth reporting
_SETTING = re.compile(r"^KOMPOSE_HOOK_TIMEOUT(?:_(?:(?:PRE|POST)_[A-Z0-9_]+|ON_ERROR))?$")
_SERVICE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
METHODS = ("GET", "POST")

# What a POST body may use as {{name}}; the same keys make the JSON summary sent by
# a POST without a body. Stack hooks and run-wide hooks fill different subsets.
STACK_FIELDS = ("run_id", "command", "hook", "stack", "status", "failed_step", "error", "dump_file")
RUN_FIELDS = ("run_id", "command", "hook", "status", "failed_step", "error", "stacks", "succeeded", "failed", "skipped")


@dataclass(frozen=True)
class Declared:
    """One declarative hook as defined; ``timeout`` is None when its own _TIMEOUT key is absent."""

    key: str
    point: str  # lower case: pre_db_export
    kind: str  # http | tcp | exec
    number: int  # 0 for an unnumbered key
    # http
    method: str = ""
    url: str = ""
    body: str | None = None
    # tcp
    host: str = ""
    port: int = 0
    # exec
    service: str = ""
    argv: tuple[str, ...] = ()
    timeout: tuple[str, str] | None = None  # (key, raw value), resolved with hooks.timeout()


def _http(key: str, value: str, fields: tuple[str, ...]) -> dict:
    words = value.strip().split(None, 2)
    if len(words) < 2:
        raise ConfigError(f"{key}: expected 'GET <url>' or 'POST <url> [<body>]', got {value!r}")
    method, url = words[0].upper(), words[1]
    if method not in METHODS:
        raise ConfigError(f"{key}: method {words[0]!r}: choose one of {', '.join(METHODS)}")
    problem = url_problem(url)
    if problem:
        raise ConfigError(f"{key}: {mask_url(url)!r} {problem}")
    body = words[2] if len(words) > 2 else None
    if body is not None and method != "POST":
        raise ConfigError(f"{key}: only a POST has a body")
    for name in _PLACEHOLDER.findall(body or ""):
        if name not in fields:
            raise ConfigError(f"{key}: unknown placeholder {{{{{name}}}}}; known: {', '.join(fields)}")
    return {"method": method, "url": url, "body": body}


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be requested (a port that is no number, a broken IPv6 literal, an
    empty label in the host name…), or None."""
    try:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return "is not an http:// or https:// URL"
        port = parts.port  # raises ValueError for a port that is no number or out of range
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if port == 0:
        return "is not a valid URL (port 0)"
    host = parts.hostname
    if ":" not in host:  # a name (IPv6 literals were checked by urlsplit)
        labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
        if any(not label for label in labels):
            return "is not a valid URL (an empty label in its host name)"
        try:
            host.encode("idna")
        except UnicodeError as exc:
            return f"is not a valid URL (host name: {exc})"
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        return "is not a valid URL (it holds a space or a control character)"
    return None


def _tcp(key: str, value: str) -> dict:
    text = value.strip()
    match = re.fullmatch(r"\[(?P<v6>[^\]]+)\]:(?P<port>\d+)|(?P<host>[^\s:\[\]]+):(?P<port2>\d+)", text)
    if not match:
        raise ConfigError(f"{key}: expected <host>:<port>, got {value!r}")
    host = match.group("v6") or match.group("host")
    port = int(match.group("port") or match.group("port2"))
    if not 0 < port < 65536:
        raise ConfigError(f"{key}: port {port} is out of range")
    return {"host": host, "port": port}


def _exec(key: str, value: str) -> dict:
    try:
        words = shlex.split(value)
    except ValueError as exc:
        raise ConfigError(f"{key}: cannot split {value!r} into words: {exc}") from None
    if len(words) < 2:
        raise ConfigError(f"{key}: expected '<service> <command> [<arg>...]', got {value!r}")
    if not _SERVICE.match(words[0]):
        raise ConfigError(f"{key}: {words[0]!r} is not a service or container name")
    return {"service": words[0], "argv": tuple(words[1:])}


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
            spec = {"http": lambda: _http(key, value, fields), "tcp": lambda: _tcp(key, value),
                    "exec": lambda: _exec(key, value)}[kind]()
        except ConfigError as exc:
            problems.append(f"{source}: {exc.message}")
            continue
        found[key] = Declared(key, point, kind, int(match.group("number") or 0), **spec)
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
    ordered = sorted(found.values(), key=lambda d: (d.point, KINDS.index(d.kind), d.number))
    return ordered, problems


def parse_strict(values: Mapping[str, str], source: str, run_wide: bool = False) -> list[Declared]:
    """Like parse(), but raises ConfigError with the first problem."""
    declared, problems = parse(values, source, run_wide)
    if problems:
        raise ConfigError(problems[0])
    return declared


def describe(declared: Declared) -> str:
    """One line for plans and listings: 'GET http://…', 'tcp db:5432', 'exec app: php artisan down'."""
    if declared.kind == "http":
        text = f"{declared.method} {mask_url(declared.url)}"
        if declared.method == "POST":
            text += " (body: " + ("template" if declared.body is not None else "JSON summary") + ")"
        return text
    if declared.kind == "tcp":
        host = f"[{declared.host}]" if ":" in declared.host else declared.host
        return f"{host}:{declared.port} open"
    return f"in {declared.service}: " + shlex.join(declared.argv)


def mask_url(url: str) -> str:
    """A URL fit for printing: a password in it is replaced by ***."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # unreadable: shown only when it cannot hold a password
        return url if "@" not in url else "<a URL with user information>"
    if password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return parts._replace(netloc=netloc).geturl()
    return url


def render_body(template: str, summary: Mapping[str, str]) -> str:
    """Fill {{name}} placeholders with summary values, escaped so they fit inside a JSON string."""
    return _PLACEHOLDER.sub(lambda m: json.dumps(str(summary.get(m.group(1), "")))[1:-1], template)
