"""The command line: parse argv, call one action, render its result; the one error boundary."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Callable, List, Optional

import typer

from kompose import __version__
from kompose.cli import typer_fast
from kompose.errors import ConfigError, ExitCode, KomposeError, NoDatabaseError, Terminated, UsageError

HELP = """Back up, restore and operate the Docker Compose stacks under a root.

\b
  kompose [OPTIONS] PATTERN COMMAND [ARGS]...
  kompose [--root DIR] --list
  kompose [--root DIR] status [PATTERN]
  kompose [--root DIR] cron [PATTERN] [--install | --check]
  kompose [--root DIR] init STACK

\b
PATTERN selects stacks: a name, a comma list ("auth,blog"), globs ("b*") or "*".
COMMAND is one of kompose's own (db:export, db:import, db:rollback, db:cleanup,
db:list, db:verify, db:drill, hooks, hooks:check) or anything else, which goes to
`docker compose` in each stack's directory. `init STACK` writes a commented hooks.sh
template. `kompose PATTERN db:export --help` shows a command's options.
"""

app = typer.Typer(add_completion=False, rich_markup_mode=None, pretty_exceptions_enable=False)


# ------------------------------------------------------- kompose's own commands
# Each parses the arguments after the command and returns the keyword arguments
# for its action's plan(); the common flags (-n/--dry-run, --json) are accepted too.


def _export_args(
    format: Optional[str] = typer.Option(
        None, "--format", "-F", help="plain (.sql) or custom (.dump, pg_dump -Fc) [default: $KOMPOSE_EXPORT_FORMAT or plain]"
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
    force: bool = typer.Option(False, "--force", help="import even when the dump's checksum differs from its manifest"),
    allow_other_database: bool = typer.Option(
        False, "--allow-other-database", help="import a dump made from another database (name or header)"
    ),
    dry_run: bool = typer.Option(False, "--dry-run", "-n", help="print the plan, change nothing"),
    json_output: bool = typer.Option(False, "--json", help="print the plan or the result as JSON"),
):
    """Restore a dump into a temporary database, then swap it in; the old one is kept for db:rollback."""
    return {"dump": dump, "in_place": in_place, "force": force, "allow_other_database": allow_other_database}, \
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
    dry_run: bool = typer.Option(False, "--dry-run", "-n", help="print the plan, change nothing"),
    json_output: bool = typer.Option(False, "--json", help="print the plan or the result as JSON"),
):
    """Re-check dumps: sha256 against the manifest, and the structure (custom: read in full by pg_restore)."""
    return {"dump": dump, "all_dumps": all_dumps}, dry_run, json_output


def _drill_args(
    dump: Optional[str] = typer.Argument(None, help="the dump (default: the newest of the stack)"),
    dry_run: bool = typer.Option(False, "--dry-run", "-n", help="print the plan, change nothing"),
    json_output: bool = typer.Option(False, "--json", help="print the plan or the result as JSON"),
):
    """Restore a dump into <DB_NAME>__kompose_drill, run hook_drill and sql/drill/*.sql, count rows, drop it."""
    return {"dump": dump}, dry_run, json_output


def _list_args(
    json_output: bool = typer.Option(False, "--json", help="print the dumps as JSON"),
):
    """List each stack's dumps, newest first."""
    return {}, False, json_output


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


def _planner(module: str) -> Callable:
    def plan(ctx, stack, **kwargs):
        import importlib

        return importlib.import_module(f"kompose.actions.{module}").plan(ctx, stack, **kwargs)

    return plan


COMMANDS: dict[str, tuple[Callable, Callable | None]] = {
    "db:export": (_export_args, _planner("db_export")),
    "db:import": (_import_args, _planner("db_import")),
    "db:rollback": (_rollback_args, _planner("db_rollback")),
    "db:cleanup": (_cleanup_args, _planner("db_cleanup")),
    "db:list": (_list_args, None),
    "db:verify": (_verify_args, _planner("db_verify")),
    "db:drill": (_drill_args, _planner("db_drill")),
    "hooks": (_hooks_args, None),
    "hooks:check": (_hooks_check_args, None),
}


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
    json_output: bool = typer.Option(False, "--json", help="print the status as JSON"),
):
    """Per stack: the newest dump, its age, size and verification, the last drill and the next scheduled run."""
    return {"pattern": pattern, "json_output": json_output}


ROOT_COMMANDS: dict[str, Callable] = {"cron": _cron_args, "status": _status_args}


def _parse_command_args(command: str, args: list[str], parser: Callable | None = None,
                        prog: str | None = None):
    """Parse a kompose command's own arguments with Typer. Returns (kwargs, dry_run, json) or None after --help."""
    parser = parser or COMMANDS[command][0]
    sub = typer.Typer(add_completion=False, rich_markup_mode=None)
    sub.command()(parser)
    click_command = typer.main.get_command(sub)
    typer_fast.install(click_command)
    try:
        result = click_command.main(args=args, prog_name=prog or f"kompose PATTERN {command}", standalone_mode=False)
    except typer.TyperException as exc:  # typer >= 0.29 raises its (vendored) click's usage errors as these
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        raise UsageError(f"{command}: {message}") from None
    return None if isinstance(result, int) else result


# ------------------------------------------------------------------ main


def _version(value: bool) -> None:
    if value:
        print(f"kompose {__version__}")
        raise typer.Exit()


@app.command(
    help=HELP,
    context_settings={
        "allow_interspersed_args": False,
        "ignore_unknown_options": True,
        "help_option_names": ["-h", "--help"],
    },
)
def kompose(
    pattern: Optional[str] = typer.Argument(None, metavar="PATTERN", show_default=False),
    command: Optional[str] = typer.Argument(None, metavar="COMMAND", show_default=False),
    args: Optional[List[str]] = typer.Argument(None, metavar="[ARGS]...", show_default=False),
    root: Optional[Path] = typer.Option(
        None, "--root", envvar="KOMPOSE_ROOT", help="the directory holding the stacks [default: $KOMPOSE_ROOT or .]"
    ),
    dry_run: bool = typer.Option(False, "--dry-run", "-n", help="print the plan, change nothing"),
    env: Optional[List[str]] = typer.Option(None, "--env", "-e", metavar="KEY=VALUE", help="set a variable (repeatable)"),
    network: Optional[str] = typer.Option(None, "--network", help="set NETWORK_NAME"),
    json_output: bool = typer.Option(False, "--json", help="print plans and results as JSON"),
    no_color: bool = typer.Option(False, "--no-color", help="no colour (also NO_COLOR)"),
    debug: bool = typer.Option(False, "--debug", help="show tracebacks"),
    list_stacks: bool = typer.Option(False, "--list", help="list the stacks and exit"),
    lock_timeout: float = typer.Option(
        0.0, "--lock-timeout", metavar="SECONDS", help="wait this long for a stack another run has locked, then skip it"
    ),
    log_file: Optional[Path] = typer.Option(
        None, "--log-file", metavar="PATH", help="also append every line, timestamped and without colour, to PATH"
    ),
    jobs: int = typer.Option(
        1, "--jobs", "-j", metavar="N", min=1,
        help="run up to N stacks at once (db:export, db:cleanup, compose commands); each stack's output is "
        "printed as one block when it finishes",
    ),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="print the version"),
) -> None:
    from kompose.console import Console  # not before a real run: --help and --version stay light

    color = False if (no_color or os.environ.get("NO_COLOR")) else None
    console = Console(out=sys.stderr if json_output else sys.stdout, color=color)
    try:
        if log_file:
            _open_log(console, log_file)
        code = _main(
            console, pattern, command, list(args or []), root, dry_run, list(env or []), network, json_output,
            list_stacks, lock_timeout, jobs,
        )
    except KomposeError as exc:
        if debug:
            raise
        console.error(exc.message)
        code = exc.exit_code
    except Terminated as exc:
        console.error(f"terminated by signal {exc.signal_number}")
        code = 128 + exc.signal_number
    except KeyboardInterrupt:
        console.error("interrupted")
        code = 130
    except Exception:
        if console.log:  # a bug: the cron log must say so, not just the mail nobody reads
            import traceback

            console.log_line("internal error:\n" + traceback.format_exc().rstrip())
            console.log_line("exit code 1")
        raise
    if console.log:
        console.log_line(f"exit code {int(code)}")
    raise typer.Exit(int(code))


def _open_log(console, path: Path) -> None:
    import shlex

    from kompose.env import MASK, SECRET_KEY

    def masked(word: str) -> str:  # -e DB_PASSWORD=x, --env=API_TOKEN=x: the value never reaches the log
        match = SECRET_KEY.search(word)
        cut = word.find("=", match.end()) if match else -1
        return word if cut < 0 else word[: cut + 1] + MASK

    words = [masked(w) for w in sys.argv[1:]]
    try:
        console.open_log(path, f"kompose {__version__}: {shlex.join(words)}")
    except OSError as exc:
        raise UsageError(f"--log-file {path}: {exc.strerror or exc}") from None


def _main(console, pattern, command, args, root, dry_run, env, network, json_output, list_stacks, lock_timeout,
          jobs=1) -> int:
    from kompose import env as envmod
    from kompose.context import Context, Options
    from kompose.stacks import discover, select

    if pattern and pattern.startswith("-"):
        raise UsageError(f"unknown option {pattern} (options go before the pattern)")
    overrides = envmod.parse_assignments(env)
    if network:
        overrides["NETWORK_NAME"] = network
    options = Options(root=(root or Path.cwd()), dry_run=dry_run, json=json_output, overrides=overrides,
                      lock_timeout=lock_timeout, jobs=jobs)

    if list_stacks:
        return _list(Context(options, console), discover(options.root), pattern, json_output)
    if pattern in ROOT_COMMANDS:
        parsed = _parse_command_args(pattern, ([command] if command else []) + args, ROOT_COMMANDS[pattern],
                                     prog=f"kompose {pattern}")
        if parsed is None:  # --help was shown
            return ExitCode.OK
        parsed["json_output"] = parsed["json_output"] or json_output
        ctx = Context(options, console)
        if pattern == "cron":
            from kompose.reports.schedules import cron_command

            return cron_command(ctx, **parsed)
        from kompose.reports.status import status_command

        return status_command(ctx, **parsed)
    if pattern == "init":
        return _init(Context(options, console), command, args)
    if not pattern or not command:
        raise UsageError("expected PATTERN COMMAND (see kompose --help), or --list")

    kwargs: dict = {}
    if command in COMMANDS:
        parsed = _parse_command_args(command, args)
        if parsed is None:  # --help was shown
            return ExitCode.OK
        kwargs, sub_dry_run, sub_json = parsed
        options.dry_run = options.dry_run or sub_dry_run
        if sub_json and not options.json:
            options.json = True
            console.out = sys.stderr
    else:
        # a compose command: its flags are compose's (`logs -n 20`), except kompose's long --dry-run
        if "--dry-run" in args:
            options.dry_run = True
            args = [a for a in args if a != "--dry-run"]
    ctx = Context(options, console)
    stacks = select(discover(options.root), pattern, options.root)

    if command == "db:list":
        return _db_list(ctx, stacks)
    if command == "hooks":
        return _hooks(ctx, stacks)
    if command == "hooks:check":
        return _hooks_check(ctx, stacks)
    return _plan_and_run(ctx, stacks, command, args, kwargs)


def _plan_and_run(ctx, stacks, command, args, kwargs) -> int:
    from kompose.plan.model import Plan
    from kompose.plan.render import render_json, render_text
    from kompose.actions import run_wide

    planner = COMMANDS[command][1] if command in COMMANDS else None
    console = ctx.console
    stack_plans, failed_planning, without_database = [], [], []
    for stack in stacks:
        try:
            if planner:
                stack_plans.append(planner(ctx, stack, **kwargs))
            else:
                from kompose.actions import compose

                stack_plans.append(compose.plan(ctx, stack, command, args))
        except NoDatabaseError:
            # `"*" db:export` from cron means "every stack that has a database"; naming
            # one stack without a database is a mistake worth an error
            if len(stacks) == 1:
                raise
            without_database.append(stack.name)
        except (ConfigError, UsageError):
            raise  # broken configuration stops the whole run before anything runs
        except KomposeError as exc:
            from kompose.run.outcomes import Outcome  # the run package only when needed

            failed_planning.append(Outcome(stack.name, "failed", error=exc.message))
    plan = Plan(command, stack_plans)
    # run-wide hooks get the command as typed, minus kompose's own output flags
    hook_args = [a for a in args if a not in ("--dry-run", "-n", "--json")] if planner else args
    plan.run_hooks = run_wide.plan(ctx, command, hook_args, [s.name for s in stacks if s.name not in without_database])
    if without_database:
        console.print(console.style(f"no database (DB_NAME not set), left out: {', '.join(without_database)}", "dim"))
    if not stack_plans and not failed_planning:
        raise UsageError(f"none of the selected stacks has a database: {', '.join(without_database)}")

    if ctx.dry_run:
        if ctx.options.json:
            data = json.loads(render_json(plan))
            data["errors"] = [{"stack": o.stack, "error": o.error} for o in failed_planning]
            _print_json(console, data)
        else:
            if plan.stacks or plan.run_hooks:
                console.print(render_text(plan))
            for outcome in failed_planning:
                console.print(f"{outcome.stack}: {command}")
                console.detail(f"✗ cannot plan: {outcome.error}", "red")
            console.print(console.style("dry run: nothing was changed", "dim"))
        return ExitCode.FAILED if failed_planning else ExitCode.OK

    from kompose.run.execute import execute_run, exit_code, summary_line

    outcomes = []
    for outcome in failed_planning:
        console.stack_header(outcome.stack, command)
        console.detail(f"✗ {outcome.error}", "red")
    result = execute_run(ctx, plan, failed_planning)
    outcomes = result.outcomes
    order = {s.name: i for i, s in enumerate(stacks)}
    outcomes.sort(key=lambda o: order.get(o.stack, 0))
    code = exit_code(outcomes, result.run_errors)
    console.print(summary_line(outcomes) + ("; run-wide hooks failed" if result.run_errors else ""), "bold")
    if ctx.options.json:
        _print_json(console, {"command": command, "run_id": result.run_id, "outcomes": [o.__dict__ for o in outcomes],
                              "run_errors": result.run_errors, "exit_code": int(code)})
    return code


def _list(ctx, stacks, pattern, json_output) -> int:
    from kompose.reports.listing import render_stack_list, stack_info
    from kompose.stacks import select

    if pattern:
        stacks = select(stacks, pattern, ctx.root)
    infos = [stack_info(ctx, stack) for stack in stacks]
    if json_output:
        print(json.dumps([info.__dict__ for info in infos], indent=2))
    elif infos:
        ctx.console.print(render_stack_list(infos))
    else:
        ctx.console.print(f"no stacks under {ctx.root}")
    return ExitCode.OK


def _db_list(ctx, stacks) -> int:
    from kompose.reports.listing import dump_rows, render_dump_rows

    all_rows = []
    for stack in stacks:
        rows = dump_rows(ctx, stack)
        all_rows += rows
        if not ctx.options.json:
            ctx.console.stack_header(stack.name, "db:list")
            for line in render_dump_rows(stack.name, rows):
                ctx.console.print(line)
    if ctx.options.json:
        print(json.dumps(all_rows, indent=2))
    return ExitCode.OK


def _terminate(signal_number: int, frame) -> None:
    raise Terminated(signal_number)
def _print_json(console, data) -> None:
    """JSON on stdout with secret values masked, as the console masks them in text (a token can
    reach a plan inside a value, e.g. a hook URL built from ${..._TOKEN})."""
    from kompose.env import mask_text

    print(mask_text(json.dumps(data, indent=2), console.secrets))


def _hooks(ctx, stacks) -> int:
    from kompose.reports.hooks import list_hooks, listing_json, render_listing

    places = list_hooks(ctx, stacks)
    if ctx.options.json:
        _print_json(ctx.console, listing_json(places))
    else:
        for line in render_listing(places):
            ctx.console.print(line)
    return ExitCode.OK


def _hooks_check(ctx, stacks) -> int:
    from kompose.reports.hooks import check, render_check

    results = check(ctx, stacks)
    failed = [r for r in results if r.problems]
    if ctx.options.json:
        _print_json(ctx.console, [{"name": r.name, "directory": str(r.directory), "problems": r.problems,
                                   "warnings": r.warnings, "checked": r.checked} for r in results])
    else:
        for line in render_check(results):
            ctx.console.print(line)
        ctx.console.print(f"{len(results) - len(failed)} of {len(results)} hook places fine", "bold")
    return ExitCode.FAILED if failed else ExitCode.OK


def _init(ctx, stack: str | None, args: list[str]) -> int:
    """`kompose init STACK`: a commented hooks.sh in <root>/STACK (made when missing)."""
    from kompose.hooks.template import write

    if not stack or args:
        raise UsageError("expected: kompose init STACK")
    if "/" in stack or stack in (".", "..") or stack.startswith((".", "_", "-")):
        raise UsageError(f"init {stack!r}: a stack is a directory name under the root (not starting with . _ -)")
    if not ctx.root.is_dir():
        raise UsageError(f"root {ctx.root} is not a directory")
    path = write(ctx.root / stack, stack)
    ctx.console.print(f"wrote {path}: every hook point, commented out")
    from kompose.stacks import compose_file_of

    if compose_file_of(path.parent) is None:
        ctx.console.print(f"{path.parent} has no compose file yet: it becomes a stack once it has compose.yaml")
    return ExitCode.OK


def _terminate(signal_number: int, frame) -> None:
    raise Terminated(signal_number)


def main() -> None:
    import signal

    # SIGTERM (timeout, systemd, docker stop) unwinds like Ctrl-C: runs clean up after themselves
    signal.signal(signal.SIGTERM, _terminate)
    command = typer.main.get_command(app)
    typer_fast.install(command)
    command(prog_name="kompose")
