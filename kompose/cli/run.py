"""One run of the command line once its options are parsed, without typer: the one error boundary
(errors to one line and an exit code), the command table's dispatch, plan and run or report, the
result. cli/app.py (typer) and cli/fast.py (a bare ``PATTERN COMMAND``) both call ``run``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from kompose import __version__
from kompose.cli.commands import PATTERN_COMMANDS, ROOT_COMMANDS, parse_command_args
from kompose.cli.words import check_compose_command, check_root_command, root_command_hint
from kompose.errors import ExitCode, KomposeError, NoStackError, Terminated, UsageError
from kompose.schema import document

OPTIONS: dict[str, bool] = {}  # kompose's own option words (-> takes a value), filled by cli/app.main()


def run(pattern=None, command=None, args=None, root=None, dry_run=False, verbose=False, env=None, network=None,
        json_output=False, no_color=False, debug=False, list_stacks=False, lock_timeout=0.0, log_file=None,
        jobs=1) -> int:
    """The command line's options as typer gives them (None for an option not given): the exit code."""
    from kompose.console import Console  # not before a real run: --help and --version stay light

    color = False if (no_color or os.environ.get("NO_COLOR")) else None
    console = Console(out=sys.stderr if json_output else sys.stdout, color=color)
    try:
        if log_file:
            _open_log(console, log_file)
        code = _main(
            console, pattern, command, list(args or []), root, dry_run, list(env or []), network, json_output,
            list_stacks, lock_timeout, jobs, verbose,
        )
    except KomposeError as exc:
        if debug:
            raise
        console.error(exc.message)
        code = exc.exit_code
        kompose_own = command in PATTERN_COMMANDS or pattern in ROOT_COMMANDS  # its --json is kompose's
        wants_json = json_output or (kompose_own and "--json" in [command, *(args or [])])
        if wants_json and not console.emitted:  # stdout is one JSON document, errors too
            console.emit_json(error_document(exc.message, code))
    except Terminated as exc:
        console.error(f"terminated by signal {exc.signal_number}")
        code = 128 + exc.signal_number
    except KeyboardInterrupt:
        console.error("interrupted")
        code = 130
    except Exception as exc:
        if not debug and type(exc).__module__.split(".")[0] in ("requests", "urllib3", "docker"):
            # the engine went away mid-run: one line naming the socket, not the SDK's internals
            from kompose.context import engine_problem

            url = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
            console.error(f"lost the Docker engine at {url}: {engine_problem(exc)}")
            if console.log:
                console.log_line("exit code 1")
            return int(ExitCode.FAILED)
        if console.log:  # a bug: the cron log must say so, not just the mail nobody reads
            import traceback

            console.log_line("internal error:\n" + traceback.format_exc().rstrip())
            console.log_line("exit code 1")
        raise
    if console.log:
        console.log_line(f"exit code {int(code)}")
    return int(code)




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
          jobs=1, verbose=False) -> int:
    from kompose import env as envmod
    from kompose.context import Context, Options
    from kompose.stacks import discover, select

    if pattern and pattern.startswith("-"):
        raise UsageError(f"unknown option {pattern} (kompose --help lists kompose's options)")
    if pattern and command and command.startswith("-") and pattern not in ROOT_COMMANDS:
        # an option between the pattern and the command that is not kompose's (kompose's are moved
        # before the pattern by hoist_options): refuse it rather than make it the compose command
        raise UsageError(f"unknown option {command} between the pattern and the command: kompose's options are "
                         f"listed by kompose --help; an option of the command goes after it "
                         f"(kompose {pattern} COMMAND {command})")
    if not 0 <= lock_timeout <= 366 * 86400:  # also nan and inf: never wait forever, never crash
        raise UsageError(f"--lock-timeout {lock_timeout:g}: give a number of seconds from 0 to 31622400 (a year)")
    overrides = envmod.parse_assignments(env)
    if network:
        overrides["NETWORK_NAME"] = network
    options = Options(root=(root or Path.cwd()), dry_run=dry_run, json=json_output, overrides=overrides,
                      lock_timeout=lock_timeout, jobs=jobs, verbose=verbose)

    if list_stacks:
        from kompose.reports.listing import stack_list_command

        stacks = discover(options.root, console.warn)
        if pattern:
            stacks = select(stacks, pattern, options.root)
        return stack_list_command(Context(options, console), stacks, json_output)
    if pattern in ROOT_COMMANDS:
        spec = ROOT_COMMANDS[pattern]
        parsed = parse_command_args(pattern, ([command] if command else []) + args, spec.args,
                                    prog=f"kompose {pattern}", outer_options=OPTIONS)
        if parsed is None:  # --help was shown
            return ExitCode.OK
        if "json_output" in parsed:
            parsed["json_output"] = parsed["json_output"] or json_output
        return spec.reporter()(Context(options, console), **parsed)
    if pattern and not command:
        check_root_command(pattern)
    if not pattern or not command:
        raise UsageError("expected PATTERN COMMAND (see kompose --help), or --list")

    spec = PATTERN_COMMANDS.get(command)
    if spec is None:
        check_compose_command(pattern, command)
    kwargs: dict = {}
    if spec:
        if not args and spec.bare is not None:  # no words to parse: typer's answer for none
            parsed = (dict(spec.bare[0]), spec.bare[1], spec.bare[2])
        else:
            parsed = parse_command_args(command, args, spec.args, outer_options=OPTIONS)
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
    ctx = Context(options, console, local_client=_local_client)
    try:
        stacks = select(discover(options.root, console.warn), pattern, options.root)
    except NoStackError as exc:
        hint = root_command_hint(pattern)
        if hint:  # `kompose stauts blog`: a typo of a command, not a missing stack
            raise UsageError(f"unknown command {pattern}{hint}") from None
        raise NoStackError(exc.message + _inside_a_stack_hint(options.root)) from None
    if spec and spec.report:
        return spec.reporter()(ctx, stacks, **kwargs)
    return _plan_and_run(ctx, stacks, command, args, kwargs, spec)


def _inside_a_stack_hint(root: Path) -> str:
    """'; ... --root ..' when the root is itself a stack directory (kompose run inside a stack)."""
    from kompose.stacks import compose_file_of

    if compose_file_of(root) is None:
        return ""
    return f" ({root.resolve().name or root} is itself a stack directory: the root is its parent, --root ..)"


def _local_client(url: str):
    """A local engine's client: kompose's own, without the SDK's import (docker/engine_api.py)."""
    from kompose.docker.engine_api import LiteClient

    return LiteClient(url, timeout=60)


def _plan_and_run(ctx, stacks, command, args, kwargs, spec) -> int:
    from kompose.actions.planning import plan_run
    from kompose.plan.render import has_detail, render_json, render_text

    console = ctx.console
    plan, failed_planning = plan_run(ctx, stacks, command, args, kwargs, spec.planner() if spec else None)
    if ctx.dry_run:
        from kompose import notify

        monitoring_lines, monitoring_json = notify.describe(ctx, plan)  # what would be sent; sends nothing
        if ctx.options.json:
            data = json.loads(render_json(plan))
            data["errors"] = [{"stack": o.stack, "error": o.error} for o in failed_planning]
            data["exit_code"] = int(ExitCode.FAILED if failed_planning else ExitCode.OK)
            data["monitoring"] = monitoring_json
            console.emit_json(document("plan", **data))
        else:
            if plan.stacks or plan.run_hooks:
                console.print(render_text(plan, verbose=ctx.options.verbose))
            for outcome in failed_planning:
                console.print(f"{outcome.stack}: {command}")
                console.failure(f"cannot plan: {outcome.error}")
            for line in monitoring_lines:
                console.print(line)
            more = "; --verbose shows every step in full" if not ctx.options.verbose and has_detail(plan) else ""
            console.print(console.style(f"dry run: nothing was changed{more}", "dim"))
        return ExitCode.FAILED if failed_planning else ExitCode.OK

    from kompose import notify
    from kompose.run.execute import execute_run, exit_code, summary_line

    notify.before_run(ctx, plan)  # validates the monitoring settings, then the /start pings
    for outcome in failed_planning:
        console.stack_header(outcome.stack, command)
        console.failure(outcome.error)
    result = execute_run(ctx, plan, failed_planning)
    outcomes = result.outcomes
    order = {s.name: i for i, s in enumerate(stacks)}
    outcomes.sort(key=lambda o: order.get(o.stack, 0))
    code = exit_code(outcomes, result.run_errors)
    if len(outcomes) > 1 and console.shows_progress():
        console.print(summary_table(outcomes, command, console.color))
    console.print(summary_line(outcomes) + ("; run-wide hooks failed" if result.run_errors else ""), "bold")
    notify.after_run(ctx, plan, outcomes, result.run_errors, code)
    if ctx.options.json:
        console.emit_json(document("result", command=command, run_id=result.run_id,
                                   outcomes=[outcome_json(o) for o in outcomes], run_errors=result.run_errors,
                                   exit_code=int(code)))
    return code


def summary_table(outcomes, command: str, color: bool) -> str:
    """The table at the end of a multi-stack run on a terminal: stack, operation, result, duration, size."""
    import io

    from rich.console import Console as RichConsole
    from rich.table import Table

    from kompose.console import human_size

    table = Table(box=None, pad_edge=False, header_style="bold")
    for column, justify in (("stack", "left"), ("operation", "left"), ("result", "left"), ("duration", "right"),
                            ("size", "right")):
        table.add_column(column, justify=justify)
    styles = {"ok": "green", "failed": "red", "skipped": "yellow"}
    for o in outcomes:
        shown = o.status if o.status == "ok" else f"{o.status}: {o.error or ''}".rstrip(": ")
        table.add_row(o.stack, command, f"[{styles.get(o.status, '')}]{shown}[/]" if color else shown,
                      f"{o.duration:.1f} s", human_size(o.bytes) if o.bytes is not None else "-")
    buffer = io.StringIO()
    import shutil

    width = shutil.get_terminal_size((120, 24)).columns
    RichConsole(file=buffer, force_terminal=color, no_color=not color, width=width, highlight=False).print(table)
    return buffer.getvalue().rstrip("\n")


def outcome_json(outcome) -> dict:
    """One stack's outcome in the result document: its steps' records name the final file, never the
    ``.partial`` it was verified as before the rename."""
    from kompose.dumps.files import PARTIAL_SUFFIX

    data = dict(outcome.__dict__)
    if outcome.file:
        partial = outcome.file + PARTIAL_SUFFIX

        def final(value):
            if isinstance(value, dict):
                return {k: final(v) for k, v in value.items()}
            if isinstance(value, list):
                return [final(v) for v in value]
            return outcome.file if value == partial else value

        data["details"] = final(data["details"])
    return data


def error_document(message: str, code: int) -> dict:
    """The JSON document of a run that stopped with an error (see docs/json.md)."""
    return document("error", error=message, exit_code=int(code))


def _terminate(signal_number: int, frame) -> None:
    raise Terminated(signal_number)
