"""Dead-man's-switch pings (Healthchecks' protocol): ``<url>/start`` before, ``<url>`` after success,
``<url>/fail`` after a failure with the exit code in the body.

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


def event_url(url: str, event: str) -> str:
    """The URL of ``event`` (start | success | fail): a path suffix, before any query string."""
    if event == "success":
        return url
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/" + event))


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
    results: dict[int, str | None] = {}

    def one(index: int, check: Check, event: str, body: str) -> None:
        import urllib.error
        import urllib.request

        request = urllib.request.Request(
            event_url(check.url, event), data=body.encode("utf-8"), method="POST",
            headers={"User-Agent": user_agent, "Content-Type": "text/plain; charset=utf-8"},
        )
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
