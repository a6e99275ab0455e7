"""What a run reports to, read from the layered environment: KOMPOSE_NOTIFY*, KOMPOSE_PING_URL*, KOMPOSE_METRICS_FILE.

Pure: no network, no apprise, no prometheus-client (they are imported only when something is sent or written).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

from kompose.errors import ConfigError

NOTIFY = "KOMPOSE_NOTIFY"
NOTIFY_ON = "KOMPOSE_NOTIFY_ON"
NOTIFY_ON_VALUES = ("failure", "always", "never")
TIMEOUT = "KOMPOSE_NOTIFY_TIMEOUT"  # seconds, for apprise and for each round of pings
DEFAULT_TIMEOUT = 10.0
PING_URL = "KOMPOSE_PING_URL"
METRICS_FILE = "KOMPOSE_METRICS_FILE"
# KOMPOSE_PING_URL without an operation is the backup's own check: db:export. Another
# operation pinging the same check would turn it green while the exports fail.
PLAIN_PING_COMMANDS = ("db:export",)
# kompose's own operations are monitored; compose pass-through (`up`, `logs`, `exec`) is interactive
MONITORED = ("db:export", "db:import", "db:rollback", "db:cleanup", "db:verify", "db:drill")


def split_urls(value: str) -> list[str]:
    """Apprise URLs from KOMPOSE_NOTIFY: separated by whitespace, or by a comma before the next
    scheme (a comma inside a URL, ``mailto://…?to=a@x,b@y``, stays in it)."""
    parts = re.split(r"\s+|,\s*(?=[A-Za-z][A-Za-z0-9+.-]*://)", value.strip())
    return [part.rstrip(",") for part in parts if part and part.rstrip(",")]


def scheme_of(url: str) -> str:
    """``json://***`` for display: the service, never the rest (it holds tokens and hosts)."""
    scheme, sep, _ = url.partition("://")
    return f"{scheme}://***" if sep and re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme) else "***"


def notify_on(env: Mapping[str, str]) -> str:
    raw = env.get(NOTIFY_ON, "").strip().lower() or "failure"
    if raw not in NOTIFY_ON_VALUES:
        raise ConfigError(f"{NOTIFY_ON}={env.get(NOTIFY_ON)!r}: expected one of {', '.join(NOTIFY_ON_VALUES)}")
    return raw


def timeout(env: Mapping[str, str]) -> float:
    raw = env.get(TIMEOUT, "").strip()
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{TIMEOUT}={raw!r} is not a number of seconds") from None
    if not 0 < value <= 300:
        raise ConfigError(f"{TIMEOUT}={raw!r}: expected seconds between 0 and 300")
    return value


def operation_key(command: str) -> str:
    """KOMPOSE_PING_URL_DB_EXPORT for db:export."""
    return f"{PING_URL}_" + re.sub(r"[^A-Z0-9]", "_", command.upper())


def ping_url(env: Mapping[str, str], command: str) -> tuple[str, str] | None:
    """(key, URL) of the check a stack pings for ``command``: KOMPOSE_PING_URL_<OP>, else
    KOMPOSE_PING_URL for db:export; None when neither is set. Raises ConfigError for a URL
    that is not http(s)."""
    for key in (operation_key(command), PING_URL if command in PLAIN_PING_COMMANDS else None):
        if key and env.get(key, "").strip():
            url = env[key].strip()
            if not re.match(r"https?://[^/\s]+", url):
                # the value is a secret: the message names the key, never the value
                raise ConfigError(f"{key}: expected an http:// or https:// URL")
            return key, url
    return None


@dataclass(frozen=True)
class RunSettings:
    """The run-wide part (root .env, process environment, -e): one notification, one metrics file."""

    urls: tuple[str, ...]
    on: str
    timeout: float
    metrics_file: str | None

    @classmethod
    def of(cls, env: Mapping[str, str]) -> "RunSettings":
        return cls(tuple(split_urls(env.get(NOTIFY, ""))), notify_on(env), timeout(env),
                   env.get(METRICS_FILE, "").strip() or None)
