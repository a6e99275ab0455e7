"""What an unattended host looks like: `kompose status` and `kompose cron --check` (read-only).

Both read the stack directories (dumps, manifests, the last drill) and the schedules; they
never talk to Docker, so they work while the engine is down — exactly when they matter.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from kompose.dumps import files as dumps
from kompose.dumps import manifest
from kompose.reports import schedules
from kompose.console import human_size
from kompose.errors import ExitCode, KomposeError, UsageError
from kompose.reports.listing import human_age
from kompose.schema import document, iso_utc
from kompose.repositories import state as copy_state

DRILL_STATE = dumps.DRILL_STATE


@dataclass
class StackStatus:
    stack: str
    database: str | None
    newest_dump: str | None = None
    dump_time: str | None = None
    age_seconds: int | None = None
    size: int | None = None
    verification: str | None = None  # verified / changed / unverified / bad: …
    dumps: int = 0
    last_drill: str | None = None
    drill_ok: bool | None = None
    next_run: str | None = None
    next_command: str | None = None
    # what a monitor acts on: "ok", or the problems (overdue, failed last run, unverified)
    state: str = "ok"
    problems: list[str] = field(default_factory=list)
    last_runs: dict = field(default_factory=dict)  # operation -> the last run's record (see notify.state)
    max_age_seconds: int | None = None  # the age limit the newest dump was judged by
    error: str | None = None  # the stack's configuration cannot be read (a bad .env line)
    # per repository (KOMPOSE_REPOSITORIES, masked): the newest copy kompose made there
    copies: list = field(default_factory=list)


def read_drill(directory: Path) -> dict | None:
    """The last drill's record, or None when there is none (or it is unreadable)."""
    try:
        record = json.loads((directory / DRILL_STATE).read_text(encoding="utf-8"))
        datetime.fromisoformat(record["at"])
        return record
    except (OSError, ValueError, KeyError, TypeError):
        return None


def stack_status(ctx, stack, now: datetime, max_age: float | None = None) -> StackStatus:
    env = ctx.stack_env(stack)
    database = env.get("DB_NAME") or None
    status = StackStatus(stack.name, database)
    directory = dumps.dump_dir(stack.dir, stack.name, env, ctx.root)  # KOMPOSE_DUMP_DIR, else the stack's
    if database:
        found = dumps.list_dumps(directory, database)
        status.dumps = len(found)
        if found:
            newest = found[0]
            health = manifest.health(newest)
            status.newest_dump = newest.path.name
            status.dump_time = newest.timestamp.isoformat(timespec="seconds")
            status.age_seconds = int((now - newest.timestamp).total_seconds())
            status.size = newest.size
            status.verification = health.state if health.good else f"{health.state}: {health.detail}"
        drill = read_drill(directory)
        if drill:
            status.last_drill = drill.get("at")
            status.drill_ok = bool(drill.get("ok"))
        status.copies = copy_state.newest_copies(directory, env)
        for copy in status.copies:
            when = copy.get("dump_time")
            copy["age_seconds"] = int((now - datetime.fromisoformat(when)).total_seconds()) if when else None
    found_schedules = schedules.stack_schedules(stack.name, env)
    upcoming = [(schedules.next_run(s.expression, now), s.command) for s in found_schedules]
    if upcoming:
        when, command = min(upcoming)
        status.next_run = when.isoformat(timespec="minutes")
        status.next_command = command
    _judge_stack(status, directory, env, found_schedules, now, max_age)
    return status


def _closed_by_swap(directory: Path, database: str) -> str | None:
    """What the mark of an unfinished swap says (kompose killed with the live database closed), or None."""
    import os

    from kompose.host import swap_mark

    mark = swap_mark.read_mark(directory)
    if mark is None:
        return None
    pid = mark.get("pid")
    running = False
    if isinstance(pid, int) and pid > 0:
        try:
            os.kill(pid, 0)
            running = True
        except ProcessLookupError:
            running = False
        except PermissionError:
            running = True
    if running:
        return f"a swap of {database} is under way (since {mark.get('at', '?')}): it may refuse connections meanwhile"
    return (f"{database} may be refusing connections: a swap was interrupted at {mark.get('at', '?')} (kompose was "
            "killed); any db command on this stack reopens it")


def _judge_stack(status: StackStatus, directory: Path, env, found_schedules, now: datetime,
                 max_age: float | None) -> None:
    """Fill in status.problems: a failed last run (of a schedulable operation), an overdue newest dump (older
    than --max-age, else than the export schedule's last due run), an export schedule without a
    verified newest dump."""
    from kompose.notify import state as run_state

    kinds = []
    status.last_runs = run_state.read(directory)
    for operation, record in sorted(status.last_runs.items()):
        # the unattended operations; a failed db:import or db:rollback is a person's, at a terminal
        if record.get("status") == "failed" and operation in schedules.OPERATIONS.values():
            kinds.append("failed")
            at = iso_utc(record.get("at")) or "?"  # as the JSON says it (docs/json.md)
            status.problems.append(f"last {operation} failed ({at}): {record.get('error') or '?'}")
    exports = [s for s in found_schedules if s.command == "db:export"]
    if status.database and (exports or max_age is not None):
        if max_age is not None:
            limit = max_age
        else:
            limit = max((now - schedules.due_since(s.expression, now, schedules.grace_of(env, s.expression, now))
                         ).total_seconds() for s in exports)
        status.max_age_seconds = int(limit)
        if status.age_seconds is None:
            kinds.append("overdue")
            status.problems.append("overdue: no dump at all")
        elif status.age_seconds > limit:
            kinds.append("overdue")
            status.problems.append(f"overdue: the newest dump is {human_age(status.age_seconds)} old "
                                   f"(limit {human_age(int(limit))})")
    if status.database and exports and status.newest_dump and status.verification != "verified":
        kinds.append("unverified")
        said = status.verification or ""
        status.problems.append("unverified: " + (said.split(": ", 1)[1] if said.startswith("unverified: ")
                                                 else f"the newest dump is {said}"))
    closed = _closed_by_swap(directory, status.database) if status.database else None
    if closed:
        kinds.append("closed")
        status.problems.append(closed)
    if kinds:
        status.state = ", ".join(dict.fromkeys(kinds))  # failed, overdue, unverified


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """Seconds of ``90m``, ``26h``, ``2d``, ``1d12h``, ``1w`` or a plain number of seconds.
    Raises UsageError for anything else."""
    raw = text.strip().lower()
    try:
        value = float(raw)
    except ValueError:
        if not raw or _DURATION_PART.sub("", raw).strip():
            raise UsageError(f"--max-age {text!r}: expected a duration such as 26h, 90m, 2d, 1d12h or seconds") from None
        value = sum(float(n) * _UNITS[u] for n, u in _DURATION_PART.findall(raw))
    if value <= 0:
        raise UsageError(f"--max-age {text!r}: expected a positive duration")
    return value


def _table(columns: list[str], rows: list[list[str]], color: bool) -> str:
    """A rich table rendered to text (so it goes through kompose's console: masked, logged)."""
    from rich.console import Console as RichConsole
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold" if color else "")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    buffer = io.StringIO()
    RichConsole(file=buffer, width=220, force_terminal=color, color_system="standard" if color else None,
                highlight=False).print(table)
    return "\n".join(line.rstrip() for line in buffer.getvalue().rstrip("\n").splitlines())


def _ago(seconds: int | None) -> str:
    return "-" if seconds is None else human_age(seconds)


def _status_or_error(ctx, stack, now: datetime, limit, alone: bool) -> StackStatus:
    """The stack's status; among others, a stack whose .env cannot be read shows its error and the
    others their status (exit 1); so does one whose KOMPOSE_DUMP_DIR is malformed. Alone, or any
    other configuration error: raised (exit 2)."""
    try:
        dumps.dump_dir(stack.dir, stack.name, ctx.stack_env(stack), ctx.root)
    except KomposeError as exc:
        if alone:
            raise
        return StackStatus(stack.name, None, error=exc.message, state="error", problems=[exc.message])
    return stack_status(ctx, stack, now, limit)


def status_command(ctx, pattern: str | None, json_output: bool, max_age: str | None = None) -> int:
    """The table (or JSON); exit 1 when a selected stack has a problem (see _judge_stack)."""
    from kompose.stacks import discover, select

    limit = parse_duration(max_age) if max_age is not None else None
    stacks = discover(ctx.root, ctx.console.warn)
    if pattern:
        stacks = select(stacks, pattern)
    now = datetime.now()
    rows = [_status_or_error(ctx, stack, now, limit, len(stacks) == 1) for stack in stacks]
    for r in rows:
        if r.error:
            ctx.console.error(f"{r.stack}: {r.error}")
    code = ExitCode.FAILED if any(r.problems for r in rows) else ExitCode.OK
    if json_output:
        ctx.console.emit_json(document("status", stacks=[asdict(r) for r in rows]))
        return code
    if not rows:
        ctx.console.print(f"no stacks under {ctx.root}")
        return ExitCode.OK
    table_rows = []
    for r in rows:
        if r.error:
            table_rows.append([r.stack, "error", r.error, "", "", "", "", "", "", "error"])
            continue
        if not r.database:
            table_rows.append([r.stack, "-", "", "", "", "", "", "", "", "; ".join(r.problems) or "ok"])
            continue
        drill = "-"
        if r.last_drill:
            drill_age = int((now - datetime.fromisoformat(r.last_drill).replace(tzinfo=None)).total_seconds())
            drill = f"{'ok' if r.drill_ok else 'FAILED'} {human_age(drill_age)} ago"
        table_rows.append([
            r.stack, r.database + (" (CLOSED?)" if "closed" in r.state else ""), r.newest_dump or "no dump",
            _ago(r.age_seconds),
            human_size(r.size) if r.size is not None else "-", r.verification or "-", drill,
            f"{r.next_command} {r.next_run.replace('T', ' ')}" if r.next_run else "not scheduled",
            _copies_text(r.copies), "; ".join(r.problems) or "ok",
        ])
    ctx.console.print(_table(["stack", "database", "newest dump", "age", "size", "verification", "last drill",
                              "next run", "copies", "state"], table_rows, ctx.console.color))
    troubled = [r.stack for r in rows if r.problems]
    ctx.console.print(f"{len(troubled)} of {len(rows)} stack(s) need attention: {', '.join(troubled)}" if troubled
                      else f"all {len(rows)} stack(s) fine", "bold")
    return code


def _copies_text(copies: list[dict]) -> str:
    """'3h (2/2)': the age of the stalest repository's newest copy, and how many repositories have one."""
    if not copies:
        return "-"
    ages = [c["age_seconds"] for c in copies if c.get("age_seconds") is not None]
    if not ages:
        return f"none (0/{len(copies)})"
    return f"{human_age(max(ages))} ({len(ages)}/{len(copies)})"


# ---------------------------------------------------------------- cron --check


def check_schedules(ctx, stacks, found: list[schedules.Schedule], target: schedules.Target, block: list[str],
                    json_output: bool) -> int:
    """Next runs per schedule, and whether what the schedule should have produced is there.

    Flags: an export schedule whose newest dump is older than its last due run (or bad),
    a drill schedule whose last drill is older or failed, and a crontab block that is
    missing or differs from the settings. Returns 1 when anything is flagged.
    """
    now = datetime.now()
    by_name = {s.name: s for s in stacks}
    results = []
    for schedule in found:
        stack = by_name[schedule.stack]
        env = ctx.stack_env(stack)
        grace = schedules.grace_of(env, schedule.expression, now)
        due = schedules.due_since(schedule.expression, now, grace)
        state, detail = _judge(schedule, dumps.dump_dir(stack.dir, stack.name, env, ctx.root), env, due, now)
        results.append({
            "stack": schedule.stack, "command": schedule.command, "expression": schedule.expression,
            "next_run": schedules.next_run(schedule.expression, now).isoformat(timespec="minutes"),
            "due_since": due.isoformat(timespec="minutes"), "state": state, "detail": detail,
        })
    text = target.read()
    installed = schedules.extract_block(text, ctx.root.resolve()) if found else None
    ignored = schedules.cron_problems(text, target.file) if text else []
    if ignored:
        crontab = {"state": "ignored by cron", "detail": f"{target.describe()}: " + "; ".join(ignored)}
    elif not found:
        crontab = {"state": "ok", "detail": "no schedules"}
    elif installed is None:
        crontab = {"state": "not installed", "detail": f"no kompose block in {target.describe()}: run kompose cron --install"}
    elif not schedules.same_block(installed, block):
        crontab = {"state": "out of date", "detail": f"{target.describe()} differs from the settings: run kompose cron --install"}
    else:
        crontab = {"state": "ok", "detail": f"installed in {target.describe()}"}
    flagged = [r for r in results if r["state"] not in ("ok", "not checked")] + \
        ([crontab] if crontab["state"] != "ok" else [])

    if json_output:
        ctx.console.emit_json(document("cron_check", schedules=results, crontab=crontab, flagged=len(flagged)))
    else:
        if results:
            ctx.console.print(_table(
                ["stack", "operation", "schedule", "next run", "due since", "state"],
                [[r["stack"], r["command"], r["expression"], r["next_run"].replace("T", " "),
                  r["due_since"].replace("T", " "), r["state"] + (f": {r['detail']}" if r["detail"] else "")]
                 for r in results],
                ctx.console.color,
            ))
        else:
            ctx.console.print("no stack sets a KOMPOSE_SCHEDULE_* value")
        ctx.console.print(f"crontab: {crontab['state']} ({crontab['detail']})")
        ctx.console.print(f"{len(flagged)} problem(s)" if flagged else "all schedules on time", "bold")
    return ExitCode.FAILED if flagged else ExitCode.OK


def _judge(schedule: schedules.Schedule, directory: Path, env, due: datetime, now: datetime) -> tuple[str, str]:
    if schedule.command == "db:export":
        database = env.get("DB_NAME", "")
        found = dumps.list_dumps(directory, database)
        if not found:
            return "overdue", "no dump at all"
        newest = found[0]
        if newest.timestamp < due:
            return "overdue", f"newest dump {newest.path.name} is {human_age(int((now - newest.timestamp).total_seconds()))} old"
        health = manifest.health(newest)
        if not health.good and health.state == "bad":
            return "bad", f"{newest.path.name}: {health.detail}"
        for copy in copy_state.newest_copies(directory, env):
            if not copy.get("dump_time") or datetime.fromisoformat(copy["dump_time"]) < due:
                return "no copy", f"{copy['repository']} got no copy since the last scheduled export"
        return "ok", f"{newest.path.name} ({health.state})"
    if schedule.command == "db:drill":
        drill = read_drill(directory)
        if not drill:
            return "overdue", "no drill has run"
        at = datetime.fromisoformat(drill["at"]).replace(tzinfo=None)
        if at < due:
            return "overdue", f"last drill {human_age(int((now - at).total_seconds()))} ago"
        if not drill.get("ok"):
            return "failed", f"last drill failed: {drill.get('error')}"
        return "ok", f"last drill {human_age(int((now - at).total_seconds()))} ago"
    return "not checked", ""

