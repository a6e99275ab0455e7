"""Schedules: KOMPOSE_SCHEDULE_<OP> crontab expressions, the crontab lines that run them, and their timing.

A stack schedules an operation with ``KOMPOSE_SCHEDULE_DB_EXPORT="0 3 * * *"`` in its
.env; the root .env may set the same keys as defaults for every stack with a database
(a stack turns a default off with the value ``off``). Stacks sharing an operation and an
expression share one crontab line. The lines live in one marked block per root, so
installing replaces kompose's own lines and nothing else.
"""

from __future__ import annotations

import math
import os
import pwd
import shlex
import shutil
from kompose.host.processes import run_captured
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Iterable, Mapping

from kompose.engines import has_database
from kompose.errors import ConfigError, KomposeError

PREFIX = "KOMPOSE_SCHEDULE_"
OPERATIONS = {"DB_EXPORT": "db:export", "DB_CLEANUP": "db:cleanup", "DB_DRILL": "db:drill", "DB_VERIFY": "db:verify"}
OFF = ("", "off", "none", "no", "-")
MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
SYSTEM_CRON_FILE = Path("/etc/cron.d/kompose")
GRACE_KEY = "KOMPOSE_SCHEDULE_GRACE"  # seconds a scheduled run may take before its result is overdue
DEFAULT_GRACE = 3600
MAX_GRACE = 366 * 86400
# scheduled runs of one stack wait this long for each other (export at 3:00, cleanup at 3:00)
# instead of skipping at once
LOCK_WAIT = 3600
CRON_LIMIT = 1000  # Debian's cron ignores a whole file with a longer line
CRON_LINE_MAX = 800  # kompose's own lines stay well under it


@dataclass(frozen=True)
class Schedule:
    stack: str
    command: str  # "db:export"
    expression: str
    key: str  # where it was set, for messages


@dataclass
class CronJob:
    """One crontab line: an operation at one expression for several stacks."""

    expression: str
    command: str
    stacks: list[str] = field(default_factory=list)

    @property
    def log_name(self) -> str:
        return self.command.replace(":", "-") + ".log"


# ---------------------------------------------------------------- expressions


def validate(expression: str, where: str) -> str:
    """The expression, normalised (single spaces). Raises ConfigError naming ``where`` when cron would not take it."""
    text = " ".join(expression.split())
    if text.startswith("@"):
        if text.lower() not in MACROS:
            raise ConfigError(f"{where}={expression!r}: unknown macro; use one of {', '.join(MACROS)} or five fields")
        return text.lower()
    fields = text.split(" ")
    if len(fields) != 5:
        raise ConfigError(f"{where}={expression!r}: a crontab expression has five fields "
                          f"(minute hour day-of-month month day-of-week), not {len(fields)}")
    from croniter import croniter
    from croniter.croniter import CroniterError

    try:
        croniter(text, datetime(2000, 1, 1))
    except (CroniterError, ValueError, KeyError) as exc:
        raise ConfigError(f"{where}={expression!r} is not a valid crontab expression: {exc}") from None
    try:  # a day that no month has (30 2, 31 4): cron takes it and never runs it
        croniter(text, datetime(2000, 1, 1)).get_next(datetime)
    except (CroniterError, ValueError, KeyError, OverflowError):
        raise ConfigError(f"{where}={expression!r} never fires: no month has that day") from None
    return text


def next_run(expression: str, after: datetime) -> datetime:
    from croniter import croniter

    return croniter(expression, after).get_next(datetime)


def previous_run(expression: str, before: datetime) -> datetime:
    from croniter import croniter

    return croniter(expression, before).get_prev(datetime)


def due_since(expression: str, now: datetime, grace: float) -> datetime:
    """The newest scheduled time whose run should have finished by ``now`` (``grace`` seconds to run)."""
    limit = now - timedelta(seconds=grace)
    when = previous_run(expression, limit)  # strictly before ``limit``
    following = next_run(expression, when)
    if following <= limit and following < now:  # a run exactly ``grace`` ago
        when = following
    return when


def grace_of(env: Mapping[str, str], expression: str, now: datetime) -> float:
    """Seconds a run may take: KOMPOSE_SCHEDULE_GRACE, else an hour or the schedule's period if shorter."""
    raw = env.get(GRACE_KEY, "").strip()
    if raw:
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{GRACE_KEY}={raw!r} is not a number of seconds") from None
        if not math.isfinite(value) or value < 0 or value > MAX_GRACE:
            raise ConfigError(f"{GRACE_KEY}={raw!r}: give a number of seconds from 0 to {MAX_GRACE} (a year)")
        return value
    last = previous_run(expression, now)
    period = (next_run(expression, last) - last).total_seconds()
    return min(DEFAULT_GRACE, period)


# ---------------------------------------------------------------- reading schedules


def stack_schedules(stack: str, env: Mapping[str, str]) -> list[Schedule]:
    """The schedules a stack's layered environment sets. Database operations only count for
    stacks with a database (a root default does not schedule exports of app-only stacks).
    Raises ConfigError for an unknown operation or an invalid expression."""
    for key in sorted(env):
        if key.startswith(PREFIX) and key != GRACE_KEY and key[len(PREFIX):] not in OPERATIONS:
            raise ConfigError(f"{key}: unknown operation {key[len(PREFIX):]}; schedulable: "
                              + ", ".join(PREFIX + op for op in OPERATIONS))
    found = []
    for operation in OPERATIONS:
        key = PREFIX + operation
        if key not in env:
            continue
        value = env[key].strip()
        if value.lower() in OFF:
            continue
        expression = validate(value, key)
        if OPERATIONS[operation].startswith("db:") and not has_database(env):
            continue
        found.append(Schedule(stack, OPERATIONS[operation], expression, key))
    return found


def collect(ctx, stacks) -> list[Schedule]:
    schedules: list[Schedule] = []
    for stack in stacks:
        schedules += stack_schedules(stack.name, ctx.stack_env(stack))
    return schedules


def group(schedules: Iterable[Schedule]) -> list[CronJob]:
    """One job per (operation, expression), stacks in order; jobs ordered by operation then expression."""
    order = list(OPERATIONS.values())
    jobs: dict[tuple[str, str], CronJob] = {}
    for schedule in schedules:
        job = jobs.setdefault((schedule.command, schedule.expression), CronJob(schedule.expression, schedule.command))
        if schedule.stack not in job.stacks:
            job.stacks.append(schedule.stack)
    return sorted(jobs.values(), key=lambda j: (order.index(j.command), j.expression))


# ---------------------------------------------------------------- crontab text


def kompose_argv() -> list[str]:
    """An absolute command that runs this kompose: the script we were started as, the one on
    PATH, or this interpreter with ``-m kompose``."""
    started_as = sys.argv[0] if sys.argv else ""
    if os.path.basename(started_as) == "kompose" and os.path.isfile(started_as):
        return [os.path.abspath(started_as)]
    on_path = shutil.which("kompose")
    if on_path:
        return [os.path.abspath(on_path)]
    return [os.path.abspath(sys.executable), "-m", "kompose"]


def begin_marker(root: Path) -> str:
    return f"# >>> kompose {root} >>>"


def end_marker(root: Path) -> str:
    return f"# <<< kompose {root} <<<"


def render_block(jobs: list[CronJob], root: Path, log_dir: Path, executable: list[str], user: str | None) -> list[str]:
    """The marked block of crontab lines for one root; ``user`` adds the user field of /etc/cron.d files.

    Debian's cron ignores a whole crontab file when one line is longer than ~1000
    characters: a job whose stacks do not fit in CRON_LINE_MAX characters becomes several
    lines at the same time, each with some of the stacks. Raises ConfigError when even one
    stack does not fit (a very long root or log path)."""
    lines = [begin_marker(root),
             "# written by `kompose cron --install`; edit the stacks' KOMPOSE_SCHEDULE_* settings, not these lines"]
    for job in jobs:
        def line_for(stacks: list[str]) -> str:
            argv = [*executable, "--root", str(root), "--log-file", str(log_dir / job.log_name), "--no-color",
                    "--lock-timeout", str(LOCK_WAIT), ",".join(stacks), job.command]
            # cron turns a bare % into a newline: escape it
            command = shlex.join(argv).replace("%", "\\%") + " >/dev/null 2>&1"
            return " ".join(filter(None, [job.expression, user, command]))

        chunk: list[str] = []
        for stack in job.stacks:
            if chunk and len(line_for(chunk + [stack])) > CRON_LINE_MAX:
                lines.append(line_for(chunk))
                chunk = []
            chunk.append(stack)
            if len(line_for(chunk)) > CRON_LINE_MAX:
                raise ConfigError(f"the crontab line for {job.command} of stack {stack} would be "
                                  f"{len(line_for(chunk))} characters: cron ignores a whole file with a line over "
                                  f"~{CRON_LIMIT}; use a shorter root, log directory or stack name")
        if chunk:
            lines.append(line_for(chunk))
    if not jobs:
        lines.append("# (no stack sets a KOMPOSE_SCHEDULE_* value)")
    lines.append(end_marker(root))
    return lines


def cron_problems(text: str, file: Path | None) -> list[str]:
    """What would make cron ignore or misread an installed crontab ``text``, as cron reads it:
    a line over its ~1000-character limit (the whole file is then ignored), and for a
    cron.d file a name run-parts skips or a mode cron refuses."""
    problems = []
    for number, line in enumerate(text.split("\n"), 1):
        if len(line) >= CRON_LIMIT:
            problems.append(f"line {number} is {len(line)} characters: cron ignores the whole file "
                            f"with a line over ~{CRON_LIMIT}")
    if file is not None and file.parent == SYSTEM_CRON_FILE.parent:
        import re

        if not re.fullmatch(r"[A-Za-z0-9_-]+", file.name):
            problems.append(f"cron ignores files in {file.parent} whose name holds other than letters, digits, _ and -")
        try:
            mode = file.stat().st_mode
            if mode & 0o022:
                problems.append(f"{file} is writable by group or others: cron ignores it")
        except OSError:
            pass
    return problems


def replace_block(text: str, root: Path, block: list[str]) -> str:
    """``text`` (a crontab) with this root's kompose block replaced by ``block`` (appended when
    absent; removed when ``block`` is empty). Lines outside the block stay as they are."""
    lines = text.splitlines()
    begin, end = begin_marker(root), end_marker(root)
    kept: list[str] = []
    inside = False
    position = None
    for line in lines:
        if line.strip() == begin:
            inside = True
            if position is None:
                position = len(kept)
            continue
        if inside:
            if line.strip() == end:
                inside = False
            continue
        kept.append(line)
    if inside:
        raise KomposeError(f"the crontab has {begin!r} without its end line {end!r}: fix it by hand first")
    if position is None:
        position = len(kept)
        if block and kept and kept[-1].strip():
            block = [""] + block
    result = kept[:position] + block + kept[position:]
    return "\n".join(result).rstrip("\n") + "\n" if any(line.strip() for line in result) else ""


def same_block(installed: list[str], wanted: list[str]) -> bool:
    """Whether two blocks schedule the same runs; the path kompose was started by may differ
    (a symlink, ``python -m kompose``) without making the installed block out of date."""
    def normal(line: str) -> str:
        line = line.strip()
        if line.startswith("#") or " --root " not in line:
            return line
        head, tail = line.split(" --root ", 1)
        words = head.split()
        # the executable is the first absolute path: schedule fields and user names never start with "/"
        start = next((i for i, word in enumerate(words) if word.startswith("/")), len(words))
        return " ".join(words[:start] + ["KOMPOSE", "--root", tail])

    return [normal(line) for line in installed] == [normal(line) for line in wanted]


def extract_block(text: str, root: Path) -> list[str] | None:
    lines = text.splitlines()
    begin, end = begin_marker(root), end_marker(root)
    try:
        start = [line.strip() for line in lines].index(begin)
        stop = [line.strip() for line in lines].index(end, start)
    except ValueError:
        return None
    return lines[start: stop + 1]


# ---------------------------------------------------------------- targets


def current_user() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name


def is_root() -> bool:
    return os.geteuid() == 0


@dataclass(frozen=True)
class Target:
    """Where the block lives: a cron.d-style file (lines carry a user) or the user's crontab."""

    file: Path | None

    @property
    def user_field(self) -> str | None:
        return current_user() if self.file else None

    def describe(self) -> str:
        return str(self.file) if self.file else f"the crontab of {current_user()}"

    def read(self) -> str:
        if self.file:
            try:
                return self.file.read_text(encoding="utf-8")
            except FileNotFoundError:
                return ""
            except UnicodeDecodeError:
                raise KomposeError(f"{self.file} is not UTF-8 text: fix or remove it first") from None
            except OSError as exc:
                raise KomposeError(f"cannot read {self.file}: {exc.strerror}") from None
        result = run_captured([_crontab(), "-l"], what="crontab -l")
        if result.exit_code != 0:
            if "no crontab" in result.stderr.lower():
                return ""
            raise KomposeError(f"crontab -l failed: {result.stderr.strip()}")
        return result.stdout

    def write(self, text: str) -> None:
        if self.file:
            _write_atomically(self.file, text)
            return
        result = run_captured([_crontab(), "-"], input=text, what="crontab -")
        if result.exit_code != 0:
            raise KomposeError(f"crontab - failed: {result.stderr.strip()}")


def default_target(cron_file: Path | None) -> Target:
    if cron_file:
        return Target(cron_file)
    return Target(SYSTEM_CRON_FILE if is_root() else None)


def default_log_dir() -> Path:
    if is_root():
        return Path("/var/log/kompose")
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "kompose"


def _crontab() -> str:
    found = shutil.which("crontab")
    if not found:
        raise KomposeError("no crontab program: install cron, or write a cron.d file with --cron-file PATH")
    return found


def _write_atomically(path: Path, text: str) -> None:
    from kompose.host.files import write_atomically

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # cron ignores cron.d files writable by group or others
        write_atomically(path, text, mode=0o644, partial=path.with_name(f".{path.name}.kompose-partial"))
    except OSError as exc:
        raise KomposeError(f"cannot write {path}: {exc.strerror or exc}") from None
