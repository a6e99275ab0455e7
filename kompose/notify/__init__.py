"""Telling someone how a run went: apprise notifications, dead-man's-switch pings, a Prometheus textfile.

The CLI calls three functions, and nothing else here:

- ``describe(ctx, plan)`` in a dry run: what would be sent (sends nothing);
- ``before_run(ctx, plan)``: the ``/start`` pings;
- ``after_run(ctx, plan, outcomes, run_errors, exit_code)``: each stack's last-run state,
  the metrics file, one notification, the final pings.

Only kompose's own operations (db:*) are monitored; compose pass-through commands are not.
Nothing here ever fails a run: every delivery has a deadline (KOMPOSE_NOTIFY_TIMEOUT, 10 s)
and a failure is one warning line on stderr. apprise and prometheus-client are imported
only when something is sent or written.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from kompose.notify import settings
from kompose.notify.settings import RunSettings


PING_EVENTS = {
    "healthchecks": "/start before the run, then success, or /fail with the exit code",
    "uptime-kuma": "status=up, or status=down, after the run",
    "cronitor": "state=run before the run, then state=complete, or state=fail with the exit code",
}


@dataclass
class Monitoring:
    """What a run reports to (computed from the plan, before anything runs; validated then)."""

    command: str
    run: RunSettings
    checks: list = field(default_factory=list)  # pings.Check

    @property
    def active(self) -> bool:
        return bool(self.run.urls and self.run.on != "never") or bool(self.checks) or bool(self.run.metrics_file)


def _run_env(ctx) -> dict[str, str]:
    env = {**ctx.root_env(), **ctx.options.overrides}
    from kompose.env import secret_values

    ctx.console.add_secrets(secret_values(env))
    return env


def _stack_envs(ctx, plan, names=()) -> dict[str, Mapping[str, str]]:
    """Each stack's layered environment: the plan's, else (a stack that could not be planned) the files'.
    Their secrets join the console's: a message or a ping body is masked with them."""
    from kompose.env import secret_values

    envs: dict[str, Mapping[str, str]] = {sp.stack: sp.env for sp in plan.stacks}
    for name in names:
        if name not in envs and (ctx.root / name).is_dir():
            envs[name] = {**ctx.root_env(), **ctx.env_file_values(ctx.root / name / ".env"), **ctx.options.overrides}
    for env in envs.values():
        ctx.console.add_secrets(secret_values(env))
    return envs


def monitoring(ctx, plan, names=()) -> Monitoring | None:
    """The run's monitoring, or None for a command that is not monitored. Raises ConfigError
    for a bad KOMPOSE_NOTIFY_ON, KOMPOSE_NOTIFY_TIMEOUT or ping URL."""
    if plan.command not in settings.MONITORED:
        return None
    from kompose.notify import pings

    return Monitoring(plan.command, RunSettings.of(_run_env(ctx)),
                      pings.checks(_stack_envs(ctx, plan, names), plan.command))


# ---------------------------------------------------------------- dry run


def describe(ctx, plan) -> tuple[list[str], dict | None]:
    """(text lines, JSON) of what the run would send and write; ([], None) when nothing."""
    found = monitoring(ctx, plan)
    if found is None or not found.active:
        return [], None
    run = found.run
    lines = ["monitoring (a dry run sends and writes none of it):"]
    data: dict = {"notify": None, "pings": [], "metrics_file": run.metrics_file, "timeout": run.timeout}
    if run.urls:
        targets = ", ".join(settings.scheme_of(u) for u in run.urls)
        when = {"failure": "when a stack fails or recovers", "always": "after every run",
                "never": "never (KOMPOSE_NOTIFY_ON=never)"}[run.on]
        lines.append(f"  notify   one message {when}, to {len(run.urls)} apprise URL(s): {targets}")
        data["notify"] = {"on": run.on, "urls": [settings.scheme_of(u) for u in run.urls]}
    from kompose.notify import pings

    for check in found.checks:
        style = pings.style_of(check.url)
        events = PING_EVENTS[style]
        lines.append(f"  ping     {check.key} (***, {style}) for {', '.join(check.stacks)}: {events}")
        data["pings"].append({"key": check.key, "url": "***", "style": style, "stacks": list(check.stacks),
                              "events": events})
    if run.metrics_file:
        lines.append(f"  metrics  {run.metrics_file}: rewritten after the run (kompose_last_* per stack and operation)")
    return lines, data


# ---------------------------------------------------------------- a real run


def before_run(ctx, plan) -> Monitoring | None:
    """Validate the settings and send the /start pings. Raises ConfigError for bad settings
    (before anything runs); a ping that fails is a warning."""
    found = monitoring(ctx, plan)
    if found is not None and found.checks:
        from kompose import __version__
        from kompose.notify import pings

        problems = pings.send([(check, "start", "") for check in found.checks], found.run.timeout,
                              f"kompose/{__version__}")
        for problem in problems:
            ctx.console.warn(problem)
    return found


def repository_ages(ctx, plan) -> dict[str, float]:
    """The hook for repositories: {repository name: age of its newest copy in seconds}, written
    as kompose_repository_newest_copy_age_seconds. Empty until repositories exist (restic's
    module fills this in from what its last push/list saw; it must not reach the network here)."""
    return {}


def after_run(ctx, plan, outcomes, run_errors=(), exit_code: int = 0) -> None:
    """After the summary: state files, metrics, one notification, the final pings. Never raises
    for a delivery or a file: each problem is one warning line on stderr."""
    if plan.command not in settings.MONITORED:
        return
    try:
        found = monitoring(ctx, plan, [o.stack for o in outcomes])
    except Exception as exc:  # validated before the run; anything now is no reason to fail it
        ctx.console.warn(f"monitoring: {getattr(exc, 'message', exc)}")
        return
    from kompose.env import mask_text

    secrets = ctx.console.secrets
    finished = time.time()
    recovered = _record_states(ctx, plan, outcomes, finished)
    if found.run.metrics_file:
        _write_metrics(ctx, plan, found.run.metrics_file, outcomes, finished)

    import threading

    from kompose import __version__
    from kompose.notify import notifications, pings

    report = notifications.RunReport(plan.command, list(outcomes), int(exit_code), list(run_errors), recovered)
    problems: list[str] = []
    sender = None
    if found.run.urls and notifications.should_send(found.run.on, report):
        message = notifications.build(report)
        message.title, message.body = mask_text(message.title, secrets), mask_text(message.body, secrets)

        def deliver() -> None:
            problems.extend(notifications.send(found.run.urls, message, found.run.timeout))

        sender = threading.Thread(target=deliver, daemon=True, name="kompose-notify")
        sender.start()
    finals = []
    for check in found.checks:
        event = pings.final_event(check, outcomes, exit_code, run_errors)
        if event is not None:
            finals.append((check, event[0], mask_text(event[1], secrets)))
    if finals:
        problems.extend(pings.send(finals, found.run.timeout, f"kompose/{__version__}"))
    if sender is not None:
        sender.join(found.run.timeout + 2)  # the child process is killed at its own deadline
        if sender.is_alive():
            problems.append(f"notification not delivered: no answer within {found.run.timeout:g} s")
    for problem in problems:
        ctx.console.warn(problem)


def _made_dump_dir(ctx, plan, name: str, directory: Path) -> bool:
    """A stack's KOMPOSE_DUMP_DIR that a command without the lock (compose's) found missing: made
    (mode 0700) so its last run is recorded; never a stack directory that is gone."""
    from kompose.host.files import make_private_dir

    if not any(sp.stack == name and sp.dump_dir != sp.directory and sp.directory.is_dir() for sp in plan.stacks):
        return False
    try:
        make_private_dir(directory)
        return True
    except OSError as exc:
        ctx.console.warn(f"{name}: cannot create the dump directory {directory}: {exc.strerror or exc}")
        return False


def _directory(ctx, plan, name: str) -> Path:
    for sp in plan.stacks:
        if sp.stack == name:
            return sp.dump_dir
    return ctx.root / name


def _record_states(ctx, plan, outcomes, finished: float) -> dict[str, str]:
    """Write each stack's last-run record; returns {stack: last time's error} of those that recovered."""
    from datetime import datetime, timezone

    from kompose.env import mask_text
    from kompose.notify import notifications, state

    at = datetime.fromtimestamp(finished, timezone.utc).astimezone().isoformat(timespec="seconds")
    recovered = {}
    for o in outcomes:
        if o.status not in ("ok", "failed"):
            continue  # skipped: this run did not do the work
        directory = _directory(ctx, plan, o.stack)
        if not directory.is_dir() and not _made_dump_dir(ctx, plan, o.stack, directory):
            continue
        entry = {"status": o.status, "at": at, "exit_code": 0 if o.status == "ok" else 1,
                 "error": mask_text(notifications.one_line(o.error), ctx.console.secrets) or None,
                 "duration": round(o.duration, 3), "bytes": o.bytes}
        try:
            previous = state.record(directory, plan.command, entry)
        except OSError as exc:
            ctx.console.warn(f"{o.stack}: cannot record the last run in {directory / state.STATE_FILE}: "
                             f"{exc.strerror or exc}")
            continue
        if o.status == "ok" and previous and previous.get("status") == "failed":
            recovered[o.stack] = previous.get("error") or "failed"
    return recovered


def _write_metrics(ctx, plan, path_text: str, outcomes, finished: float) -> None:
    from kompose.notify import metrics

    path = Path(path_text).expanduser()
    if not path.is_absolute():
        path = ctx.root / path
    results = [metrics.Result(o.stack, plan.command, o.status == "ok", finished, o.duration,
                              o.bytes if plan.command == "db:export" else None)
               for o in outcomes if o.status in ("ok", "failed")]
    try:
        warning = metrics.write(path, results, repository_ages(ctx, plan))
    except Exception as exc:  # OSError, a lock we cannot take: the metrics are stale, the run is not failed
        ctx.console.warn(f"metrics not written to {path}: {getattr(exc, 'strerror', None) or exc}")
        return
    if warning:
        ctx.console.warn(warning)
