"""The argument parsers of kompose's own commands (cli/commands.py's table names them): each is a
Typer signature that parses the words after the command and returns ``(kwargs, dry_run, json)``
(pattern commands) or ``kwargs`` (the others). Imported only when a command has words to parse
(or --help): typer's import costs more than a small export's own work."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from kompose.errors import UsageError


# ------------------------------------------------------- kompose's own commands
# Each parses the arguments after the command and returns the keyword arguments
# for its action's plan(); the common flags (-n/--dry-run, --json) are accepted too.


def _export_args(
    format: Optional[str] = typer.Option(
        None, "--format", "-F", metavar="plain|custom",
        help="plain (.sql) or custom (.dump, pg_dump -Fc) [default: $KOMPOSE_EXPORT_FORMAT or plain]"
    ),
    compress: Optional[str] = typer.Option(
        None, "--compress", metavar="gzip|zstd[:LEVEL]|none",
        help="compress a plain dump (.sql.gz, .sql.zst) [default: $KOMPOSE_EXPORT_COMPRESS or none]",
    ),
    transport: str = typer.Option(
        "auto", "--transport", metavar="auto|exec|direct",
        help="how the dump reaches the host: direct (pg_dump in a helper container writing the file; needs a local "
        "engine), exec (streamed through docker exec), auto (direct when possible)",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", "-n", help="print the plan, change nothing"),
    json_output: bool = typer.Option(False, "--json", help="print the plan or the result as JSON"),
):
    """pg_dump the stack's database into <stack>/<DB_NAME>_<timestamp>.sql, verified, with a manifest <dump>.json."""
    return {"fmt": format, "compress": compress, "transport_name": transport}, dry_run, json_output


def _import_args(
    dump: Optional[str] = typer.Argument(None, help="the dump, in the stack's directory (default: its newest)"),
    in_place: bool = typer.Option(False, "--in-place", help="drop and recreate the live database (no safe swap)"),
    no_owner: bool = typer.Option(
        False, "--no-owner", help="give every restored object to DB_USER (the dump's owning roles need not exist)"
    ),
    force: bool = typer.Option(False, "--force", help="import even when the dump's checksum differs from its manifest"),
    allow_other_database: bool = typer.Option(
        False, "--allow-other-database", help="import a dump made from another database (name or header)"
    ),
    dry_run: bool = typer.Option(False, "--dry-run", "-n", help="print the plan, change nothing"),
    json_output: bool = typer.Option(False, "--json", help="print the plan or the result as JSON"),
):
    """Restore a dump into a temporary database, then swap it in; the old one is kept for db:rollback."""
    return {"dump": dump, "in_place": in_place, "force": force, "allow_other_database": allow_other_database,
            "no_owner": no_owner}, \
        dry_run, json_output


def _rollback_args(
    dry_run: bool = typer.Option(False, "--dry-run", "-n", help="print the plan, change nothing"),
    json_output: bool = typer.Option(False, "--json", help="print the plan or the result as JSON"),
):
    """Swap the previous database (kept by the last import) back in."""
    return {}, dry_run, json_output


def _cleanup_args(
    keep: Optional[int] = typer.Option(None, "--keep", metavar="N", help="the same as --keep-last N"),
    keep_last: Optional[int] = typer.Option(None, "--keep-last", metavar="N", help="keep the N newest dumps"),
    keep_daily: Optional[int] = typer.Option(None, "--keep-daily", metavar="D", help="keep the newest dump of each of D days"),
    keep_weekly: Optional[int] = typer.Option(None, "--keep-weekly", metavar="W", help="... of each of W ISO weeks"),
    keep_monthly: Optional[int] = typer.Option(None, "--keep-monthly", metavar="M", help="... of each of M months"),
    dry_run: bool = typer.Option(False, "--dry-run", "-n", help="show each dump with keep/remove and why; change nothing"),
    json_output: bool = typer.Option(False, "--json", help="print the plan or the result as JSON"),
):
    """Remove the dumps a retention policy does not keep (default: the stack's KOMPOSE_KEEP_*, else --keep-last 1).

    The newest good dump is always kept, and good dumps are kept until at least keep-last remain.
    """
    return {"keep": keep, "keep_last": keep_last, "keep_daily": keep_daily, "keep_weekly": keep_weekly,
            "keep_monthly": keep_monthly}, dry_run, json_output


def _verify_args(
    dump: Optional[str] = typer.Argument(None, help="the dump (default: the newest of the stack)"),
    all_dumps: bool = typer.Option(False, "--all", help="verify every dump of the stack"),
    remote: bool = typer.Option(False, "--remote", help="check the stack's restic repositories instead (restic check)"),
    read_data: Optional[str] = typer.Option(
        None, "--read-data", metavar="SUBSET",
        help="with --remote: how much data to read back (5%, 1/10, 500M; 0: none) [default: "
        "$KOMPOSE_REPOSITORY_CHECK_SUBSET or 5%]",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", "-n", help="print the plan, change nothing"),
    json_output: bool = typer.Option(False, "--json", help="print the plan or the result as JSON"),
):
    """Re-check dumps: sha256 against the manifest, and the structure (custom: read in full by pg_restore)."""
    if (dump or all_dumps) and remote:
        raise UsageError("db:verify --remote checks the repositories: it takes no DUMP and no --all")
    return {"dump": dump, "all_dumps": all_dumps, "remote": remote, "read_data": read_data}, dry_run, json_output


def _drill_args(
    dump: Optional[str] = typer.Argument(None, help="the dump (default: the newest of the stack); with "
                                         "--from-repository a snapshot id"),
    from_repository: bool = typer.Option(
        False, "--from-repository", help="drill the newest copy in the stack's restic repositories (pulled into a "
        "scratch directory, removed after)"),
    dry_run: bool = typer.Option(False, "--dry-run", "-n", help="print the plan, change nothing"),
    json_output: bool = typer.Option(False, "--json", help="print the plan or the result as JSON"),
):
    """Restore a dump into <DB_NAME>__kompose_drill, run hook_drill and sql/drill/*.sql, count rows, drop it."""
    return {"dump": dump, "from_repository": from_repository}, dry_run, json_output


def _list_args(
    remote: bool = typer.Option(False, "--remote", help="the copies in the stack's restic repositories instead"),
    json_output: bool = typer.Option(False, "--json", help="print the dumps as JSON"),
):
    """List each stack's dumps, newest first (--remote: its copies in each repository)."""
    return {"remote": remote}, False, json_output


def _push_args(
    dump: Optional[str] = typer.Argument(None, help="the dump, in the stack's directory (default: its newest verified one)"),
    init: bool = typer.Option(False, "--init", help="create a repository that does not exist yet (restic init)"),
    dry_run: bool = typer.Option(False, "--dry-run", "-n", help="print the plan, change nothing"),
    json_output: bool = typer.Option(False, "--json", help="print the plan or the result as JSON"),
):
    """Copy a dump and its manifest into the stack's repositories (KOMPOSE_REPOSITORIES) that lack it."""
    return {"dump": dump, "init": init}, dry_run, json_output


def _pull_args(
    snapshot: Optional[str] = typer.Argument(None, help="a snapshot id (default: the newest copy in any repository)"),
    dry_run: bool = typer.Option(False, "--dry-run", "-n", help="print the plan, change nothing"),
    json_output: bool = typer.Option(False, "--json", help="print the plan or the result as JSON"),
):
    """Bring a copy back from the stack's repositories into its directory, sha256 checked; then db:import it."""
    return {"snapshot": snapshot}, dry_run, json_output


def _hooks_args(
    json_output: bool = typer.Option(False, "--json", help="print the hooks as JSON"),
):
    """List every hook that would run, per stack and hook point, in order (runs none)."""
    return {}, False, json_output


def _hooks_check_args(
    json_output: bool = typer.Option(False, "--json", help="print the findings as JSON"),
):
    """Check hooks.sh (bash -n, shellcheck when installed), declarative hooks and SQL hook directories."""
    return {}, False, json_output


# ------------------------------------------- commands without a pattern (like --list)
# `kompose cron ...` and `kompose status ...`: the first word is the command. A stack
# named "cron" or "status" is still reachable with a comma pattern: `kompose cron, up -d`.


def _cron_args(
    pattern: Optional[str] = typer.Argument(None, help="only these stacks (default: every stack)"),
    install: bool = typer.Option(False, "--install", help="write the lines into the crontab, replacing kompose's block"),
    check: bool = typer.Option(False, "--check", help="show the next runs; flag stacks whose newest dump is too old"),
    cron_file: Optional[Path] = typer.Option(
        None, "--cron-file", envvar="KOMPOSE_CRON_FILE", metavar="PATH",
        help="the cron.d file to write [default: /etc/cron.d/kompose as root, else the user's crontab]",
    ),
    log_dir: Optional[Path] = typer.Option(
        None, "--log-dir", metavar="DIR", help="where scheduled runs log [default: /var/log/kompose as root, else ~/.local/state/kompose]"
    ),
    json_output: bool = typer.Option(False, "--json", help="print the schedule as JSON"),
):
    """Crontab lines for the stacks' KOMPOSE_SCHEDULE_<OP> settings (print, --install or --check)."""
    return {"pattern": pattern, "install": install, "check": check, "cron_file": cron_file, "log_dir": log_dir,
            "json_output": json_output}


def _status_args(
    pattern: Optional[str] = typer.Argument(None, help="only these stacks (default: every stack)"),
    max_age: Optional[str] = typer.Option(
        None, "--max-age", metavar="DURATION",
        help="the newest dump may be this old (26h, 90m, 2d, seconds) [default: from KOMPOSE_SCHEDULE_DB_EXPORT]",
    ),
    json_output: bool = typer.Option(False, "--json", help="print the status as JSON"),
):
    """Per stack: the newest dump, its age, size and verification, the last drill, the next scheduled run.

    Exit 1 when a stack's newest dump is overdue, its last run failed, or it is scheduled without a verified dump.
    """
    return {"pattern": pattern, "json_output": json_output, "max_age": max_age}


def _init_args(
    stack: Optional[str] = typer.Argument(None, help="the stack directory to write hooks.sh into (made when missing)"),
):
    """Write a commented hooks.sh template with every hook point into <root>/STACK."""
    return {"stack": stack}
