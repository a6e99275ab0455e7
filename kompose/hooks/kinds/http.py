"""http hooks: ``KOMPOSE_HOOK_<POINT>_HTTP=GET <url>`` or ``POST <url> [<body>]`` — 2xx and 3xx (not
followed) count as success; a POST without a body sends the JSON summary of the run."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Mapping
from urllib.parse import urlsplit

from kompose.env import mask_url
from kompose.errors import ConfigError
from kompose.plan.steps import HookStep


KIND = "http"
METHODS = ("GET", "POST")
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def render_body(template: str, summary: Mapping[str, str]) -> str:
    """Fill {{name}} placeholders with summary values, escaped so they fit inside a JSON string."""
    return PLACEHOLDER.sub(lambda m: json.dumps(str(summary.get(m.group(1), "")))[1:-1], template)


@dataclass(frozen=True)
class HttpHook(HookStep):
    """A declarative HTTP request; 2xx and 3xx (not followed) count as success."""

    kind = KIND
    point: str
    key: str  # the .env key that defines it
    method: str
    url: str
    body: str | None  # a template with {{placeholders}}; None for a POST: the JSON summary
    timeout: float
    env: tuple[tuple[str, str], ...] = ()  # the point's variables (KOMPOSE_DUMP_FILE, ...) for the summary

    def what(self) -> str:
        text = f"http {self.method} {mask_url(self.url)}"
        if self.method == "POST":
            text += " (body: " + ("template" if self.body is not None else "JSON summary") + ")"
        return text

    def label(self) -> str:
        return self.key


STEP = HttpHook


def parse(key: str, value: str, fields: tuple[str, ...]) -> dict:
    """The definition's fields (for Declared), or ConfigError naming the key."""
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
    for name in PLACEHOLDER.findall(body or ""):
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


def step(point: str, item, timeout: float, extra: tuple[tuple[str, str], ...]) -> HttpHook:
    return HttpHook(point, item.key, item.method, item.url, item.body, timeout, extra)


def run(runner, step: HttpHook, state: Mapping[str, str]) -> None:
    from kompose.hooks import probes  # urllib costs start-up time only the runs with such hooks should pay

    what = f"http hook {step.key} ({step.method} {mask_url(step.url)})"
    runner.detail(f"hook {step.key}: {step.method} {mask_url(step.url)}")
    body: bytes | None = None
    content_type = "application/json"
    if step.method == "POST":
        summary = runner.summary(step, state)
        if step.body is None:
            body = json.dumps(summary).encode()
        else:
            flat = {k: " ".join(v) if isinstance(v, list) else str(v) for k, v in summary.items()}
            text = render_body(step.body, flat)
            try:
                json.loads(text)
            except ValueError:
                content_type = "text/plain; charset=utf-8"
            body = text.encode()
    result = probes.http_request(step.method, step.url, body, content_type, step.timeout, what)
    runner.sink(f"{result.status} {result.reason}".rstrip())
