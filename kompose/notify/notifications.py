"""One message per run through apprise: what ran, what failed and why, durations, sizes, recoveries.

The message is built here (pure); apprise runs in a child process (``kompose.notify.sender``)
that is killed at the deadline, so a hanging service never holds the run, and apprise's ~0.2 s
import and its thread pools never touch kompose's own process. The URLs travel on the child's
stdin, never in argv.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Iterable

from kompose.notify.settings import scheme_of

ERROR_LINE_LIMIT = 300


@dataclass
class Message:
    title: str
    body: str
    kind: str  # apprise's notify type: success | failure | warning | info


@dataclass
class RunReport:
    """What a run did, for one message: outcomes plus the stacks that recovered."""

    command: str
    outcomes: list
    exit_code: int
    run_errors: list[str] = field(default_factory=list)
    recovered: dict[str, str] = field(default_factory=dict)  # stack -> its error last time
    host: str = ""


def one_line(text: str | None) -> str:
    """The first line of an error, bounded: the "one error line" of a stack."""
    first = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return first if len(first) <= ERROR_LINE_LIMIT else first[: ERROR_LINE_LIMIT - 1] + "…"


def should_send(on: str, report: RunReport) -> bool:
    if on == "never":
        return False
    if on == "always":
        return True
    return bool(report.run_errors or report.recovered or any(o.status == "failed" for o in report.outcomes))


def human_size(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def build(report: RunReport) -> Message:
    outcomes = report.outcomes
    failed = [o for o in outcomes if o.status == "failed"]
    skipped = [o for o in outcomes if o.status == "skipped"]
    host = report.host or socket.gethostname()
    count = f"{len(outcomes)} stack{'s' if len(outcomes) != 1 else ''}"
    if failed or report.run_errors:
        what = f"{len(failed)} of {count} failed" if failed else "run-wide hooks failed"
        kind = "failure"
    elif report.recovered:
        what = f"recovered: {', '.join(report.recovered)}"
        kind = "success"
    elif skipped:
        what = f"{len(skipped)} of {count} skipped"
        kind = "warning"
    else:
        what = f"{count} succeeded"
        kind = "success"
    lines = []
    for o in outcomes:
        if o.status == "failed":
            lines.append(f"✗ {o.stack}: failed after {o.duration:.1f} s: {one_line(o.error)}")
        elif o.status == "skipped":
            lines.append(f"- {o.stack}: skipped: {one_line(o.error)}")
        else:
            size = f", {human_size(o.bytes)}" if o.bytes is not None else ""
            name = f": {o.file.rsplit('/', 1)[-1]}" if o.file else ""
            line = f"✓ {o.stack}: ok in {o.duration:.1f} s{size}{name}"
            if o.stack in report.recovered:
                line += f" (recovered; last time: {one_line(report.recovered[o.stack])})"
            lines.append(line)
    lines += [one_line(error) for error in report.run_errors]
    lines.append(f"exit code {int(report.exit_code)}")
    return Message(f"kompose {report.command} on {host}: {what}", "\n".join(lines), kind)


def send(urls: Iterable[str], message: Message, timeout: float) -> list[str]:
    """Deliver ``message`` to every URL through apprise in a child process, killed after
    ``timeout`` seconds. Returns the problems (empty when every URL took it); never raises."""
    urls = list(urls)
    payload = json.dumps({"urls": urls, "title": message.title, "body": message.body, "type": message.kind})
    try:
        result = subprocess.run(
            [sys.executable, "-m", "kompose.notify.sender"], input=payload, capture_output=True, text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return [f"notification not delivered: no answer within {timeout:g} s"]
    except OSError as exc:
        return [f"notification not delivered: cannot start apprise: {exc.strerror or exc}"]
    try:
        answer = json.loads(result.stdout.strip().splitlines()[-1])
        problems = list(answer["problems"])
    except (ValueError, IndexError, KeyError, TypeError):
        tail = (result.stderr.strip().splitlines() or ["no answer"])[-1]
        problems = [f"apprise failed: {tail}"]
    return [scrub(f"notification not delivered: {p}", urls) for p in problems]


def scrub(text: str, urls: Iterable[str]) -> str:
    """No URL in a problem line: apprise's own messages may quote one."""
    for url in sorted(urls, key=len, reverse=True):
        text = text.replace(url, scheme_of(url))
    return re.sub(r"\b([A-Za-z][A-Za-z0-9+.-]*)://\S+", r"\1://***", text)
