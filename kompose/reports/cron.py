"""``kompose cron``: print the crontab block of the stacks' schedules, install it, or check it."""

from __future__ import annotations

from pathlib import Path

from kompose.errors import ExitCode, UsageError
from kompose.schema import document
from kompose.reports.schedules import (
    collect, default_log_dir, default_target, group, kompose_argv, render_block, replace_block,
)
from kompose.reports.status import check_schedules


def cron_command(ctx, pattern: str | None, install: bool, check: bool, cron_file: Path | None,
                 log_dir: Path | None, json_output: bool) -> int:
    """``kompose cron``: print the block, write it (--install), or check the schedule (--check)."""
    from kompose.stacks import discover, select

    if install and check:
        raise UsageError("cron: --install and --check exclude each other")
    stacks = discover(ctx.root, ctx.console.warn)
    if pattern:
        stacks = select(stacks, pattern)
    schedules = collect(ctx, stacks)
    root = ctx.root.resolve()
    target = default_target(cron_file)
    block = render_block(group(schedules), root, (log_dir or default_log_dir()).absolute(), kompose_argv(),
                         target.user_field)
    if check:
        return check_schedules(ctx, stacks, schedules, target, block, json_output)
    if install:
        if pattern:
            raise UsageError("cron --install writes the schedule of every stack under the root: leave out the pattern")
        daemon = cron_daemon()
        if daemon is None:  # the lines would be written and never run
            ctx.console.warn("no cron daemon found (cron, crond, cronie, busybox crond): the schedule is written "
                             "but nothing will run it until one is installed and running")
        before = target.read()
        after = replace_block(before, root, block)
        if after == before:
            ctx.console.print(f"{target.describe()}: kompose's block for {root} is up to date")
        else:
            target.write(after)
            ctx.console.print(f"{target.describe()}: wrote kompose's block for {root} ({len(block) - 3} line(s))")
        if json_output:
            ctx.console.emit_json(document("cron_install", target=target.describe(), changed=after != before,
                                           lines=block))
        return ExitCode.OK
    if json_output:
        ctx.console.emit_json(document("cron", schedules=[
            {"stack": s.stack, "command": s.command, "expression": s.expression, "key": s.key} for s in schedules]))
    else:
        ctx.console.emit("\n".join(block))
    return ExitCode.OK


CRON_DAEMONS = ("cron", "crond", "cronie", "fcron", "dcron")


def cron_daemon() -> str | None:
    """The path of an installed cron daemon, or None. $KOMPOSE_CRON_DAEMONS (colon-separated paths)
    replaces the search, for tests and unusual hosts."""
    import os
    import shutil

    override = os.environ.get("KOMPOSE_CRON_DAEMONS")
    if override is not None:
        return next((p for p in override.split(":") if p and Path(p).exists()), None)
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin", "/usr/local/sbin"])
    for name in CRON_DAEMONS:
        found = shutil.which(name, path=search)
        if found:
            return found
    busybox = shutil.which("busybox", path=search)
    return f"{busybox} crond" if busybox and Path("/etc/crontabs").is_dir() else None
