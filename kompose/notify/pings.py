"""Dead-man's-switch pings: ``<url>/start`` before, ``<url>`` after success, ``<url>/fail`` after a
failure with the exit code in the body (Healthchecks' protocol; Uptime Kuma push monitors and
Cronitor telemetry URLs get their own query forms, see http_request).

The stacks of a run that ping the same URL (a root-wide KOMPOSE_PING_URL_DB_EXPORT) make one
check: one /start, then /fail if any of them failed, else success. A stack's own URL is its own
check. Every round of pings shares one deadline; a ping that fails or hangs is a warning line,
never a failed run.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Iterable, Mapping
from urllib.parse import urlsplit, urlunsplit

from kompose.notify import settings


@dataclass(frozen=True)
class Check:
    key: str  # the setting it came from (shown; the URL is a secret)
    url: str
    stacks: tuple[str, ...]


def checks(stack_envs: Mapping[str, Mapping[str, str]], command: str) -> list[Check]:
    """The checks of a run, in stack order: stacks sharing a URL share one check."""
    found: dict[str, tuple[str, list[str]]] = {}
    for stack, env in stack_envs.items():
        setting = settings.ping_url(env, command)
        if setting is None:
            continue
        key, url = setting
        found.setdefault(url, (key, []))[1].append(stack)
    return [Check(key, url, tuple(stacks)) for url, (key, stacks) in found.items()]


def style_of(url: str) -> str:
    """Which service's protocol a URL speaks: ``uptime-kuma`` (a push monitor's ``/api/push/<token>``),
    ``cronitor`` (telemetry at cronitor.link), else ``healthchecks``."""
    parts = urlsplit(url)
    if "/api/push/" in parts.path:
        return "uptime-kuma"
    if (parts.hostname or "").endswith("cronitor.link"):
        return "cronitor"
    return "healthchecks"


def event_url(url: str, event: str) -> str:
    """Healthchecks: the URL of ``event`` (start | success | fail) is a path suffix, before any query string."""
    if event == "success":
        return url
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/" + event))


def http_request(url: str, event: str, body: str) -> tuple[str, str, bytes | None] | None:
    """(method, URL, body) of one ping in the URL's service's protocol; None when it has no such event.

    Healthchecks: POST <url>/start, <url>, <url>/fail, the body logged. Uptime Kuma push monitors know
    only up and down: GET <url>?status=up|down&msg=…, nothing at start. Cronitor telemetry:
    GET <url>?state=run|complete|fail (&status_code, &message on fail).
    """
    style = style_of(url)
    if style == "healthchecks":
        return "POST", event_url(url, event), body.encode("utf-8")
    first = next((line for line in body.splitlines() if line.strip()), "")
    summary = "; ".join(line for line in body.splitlines()[1:] if line.strip())[:200]
    if style == "uptime-kuma":
        if event == "start":
            return None
        query = {"status": "up" if event == "success" else "down", "msg": (summary or first or "OK")[:200]}
    else:
        query = {"state": {"start": "run", "success": "complete", "fail": "fail"}[event]}
        if event == "fail":
            query["status_code"] = first.rsplit(" ", 1)[-1] if first.startswith("exit code") else "1"
            query["message"] = summary
    return "GET", _with_query(url, query), None


def _with_query(url: str, values: dict[str, str]) -> str:
    from urllib.parse import parse_qsl, urlencode

    parts = urlsplit(url)
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in values]
    return urlunsplit(parts._replace(query=urlencode(kept + list(values.items()))))


def final_event(check: Check, outcomes: Iterable, exit_code: int, run_errors: Iterable[str] = ()) -> tuple[str, str] | None:
    """(event, body) to send after the run: fail when a stack of the check failed or the run-wide
    hooks did; None when every stack of the check was skipped because another run holds their
    lock (that run pings for them)."""
    mine = [o for o in outcomes if o.stack in check.stacks]
    failed = [o for o in mine if o.status == "failed"]
    run_errors = list(run_errors)
    lines = [f"{o.stack}: {o.status}" + (f": {o.error}" if o.error and o.status != "ok" else "") for o in mine]
    if failed or run_errors:
        return "fail", "\n".join([f"exit code {int(exit_code)}", *lines, *run_errors]) + "\n"
    if any(o.status == "ok" for o in mine):
        return "success", "\n".join(["exit code 0", *lines]) + "\n"
    return None


def send(requests: list[tuple[Check, str, str]], timeout: float, user_agent: str = "kompose") -> list[str]:
    """POST each (check, event, body) at once; wait at most ``timeout`` seconds for all.

    Returns one problem line per ping not delivered (it names the setting, never the URL).
    """
    requests = [(check, event, body) for check, event, body in requests if http_request(check.url, event, body)]
    results: dict[int, str | None] = {}

    def one(index: int, check: Check, event: str, body: str) -> None:
        import urllib.error
        import urllib.request

        method, url, data = http_request(check.url, event, body)
        headers = {"User-Agent": user_agent}
        if data is not None:
            headers["Content-Type"] = "text/plain; charset=utf-8"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                response.read(4096)
            results[index] = None
        except urllib.error.HTTPError as exc:
            results[index] = f"HTTP {exc.code}"
        except urllib.error.URLError as exc:
            results[index] = _reason(exc.reason)
        except Exception as exc:  # a socket timeout, a reset, a malformed answer: never the run's problem
            results[index] = _reason(exc)

    threads = []
    for index, (check, event, body) in enumerate(requests):
        thread = threading.Thread(target=one, args=(index, check, event, body), daemon=True,
                                  name=f"kompose-ping-{index}")
        thread.start()
        threads.append(thread)
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    problems = []
    for index, (check, event, _) in enumerate(requests):
        problem = results.get(index, f"no answer within {timeout:g} s")
        if problem is not None:
            problems.append(f"ping {check.key} ({event}) not delivered: {problem}")
    return problems


def _reason(exc: object) -> str:
    if isinstance(exc, TimeoutError) or type(exc).__name__ == "timeout":
        return "timed out"
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]
