"""The command line parsed by typer: the global options, --help, --version, completion, then
cli/run.py's run (the error boundary, the dispatch). A bare ``PATTERN COMMAND`` skips typer
(cli/fast.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer

from kompose import __version__
from kompose.cli import completion, typer_fast
from kompose.cli.run import OPTIONS, _terminate, error_document, outcome_json, run, summary_table  # noqa: F401
from kompose.cli.words import hoist_options, option_table
from kompose.errors import ExitCode

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
db:list, db:verify, db:drill, db:push, db:pull, hooks, hooks:check) or anything else, which goes to
`docker compose` in each stack's directory. `init STACK` writes a commented hooks.sh
template. `kompose PATTERN db:export --help` shows a command's options.
"""


app = typer.Typer(add_completion=True, rich_markup_mode=None, pretty_exceptions_enable=False)


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
    pattern: Optional[str] = typer.Argument(None, metavar="PATTERN", show_default=False,
                                            autocompletion=completion.complete_pattern),
    command: Optional[str] = typer.Argument(None, metavar="COMMAND", show_default=False,
                                            autocompletion=completion.complete_command),
    args: Optional[List[str]] = typer.Argument(None, metavar="[ARGS]...", show_default=False),
    root: Optional[Path] = typer.Option(
        None, "--root", envvar="KOMPOSE_ROOT", metavar="DIR", help="the directory holding the stacks [default: $KOMPOSE_ROOT or .]"
    ),
    dry_run: bool = typer.Option(False, "--dry-run", "-n", help="print the plan, change nothing"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="dry runs: every step in full (SQL bodies)"),
    env: Optional[List[str]] = typer.Option(None, "--env", "-e", metavar="KEY=VALUE", help="set a variable (repeatable)"),
    network: Optional[str] = typer.Option(None, "--network", metavar="NAME", help="set NETWORK_NAME"),
    json_output: bool = typer.Option(False, "--json", help="print plans and results as JSON"),
    no_color: bool = typer.Option(False, "--no-color", help="no colour (also NO_COLOR)"),
    debug: bool = typer.Option(False, "--debug", help="show tracebacks"),
    list_stacks: bool = typer.Option(False, "--list", "-l", help="list the stacks and exit"),
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
) -> int:
    """(the command line's options: see cli/run.py)"""
    return run(pattern, command, args, root, dry_run, verbose, env, network, json_output, no_color, debug,
               list_stacks, lock_timeout, log_file, jobs)


def main() -> None:
    import signal

    # SIGTERM (timeout, systemd, docker stop) and SIGHUP (a closed terminal, an ssh session
    # that dropped) unwind like Ctrl-C: runs clean up after themselves
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    try:
        command = typer.main.get_command(app)
        typer_fast.install(command)
        typer_fast.plain_help(command)
        OPTIONS.update(option_table(command))
        argv = hoist_options(sys.argv[1:], OPTIONS)
        try:
            code = command.main(args=argv, prog_name="kompose", standalone_mode=False)
        except typer.TyperException as exc:  # a bad option or value, before kompose's own code runs
            code = getattr(exc, "exit_code", ExitCode.USAGE)
            message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
            print(f"error: {message} (see kompose --help)", file=sys.stderr)  # one line, like every error
            if "--json" in argv[: argv.index("--") if "--" in argv else len(argv)]:
                print(json.dumps(error_document(message, code), indent=2))
    except KeyboardInterrupt as exc:  # before or after kompose()'s own boundary: one line, no traceback
        number = getattr(exc, "signal_number", signal.SIGINT)
        sys.stderr.write("error: interrupted\n" if number == signal.SIGINT else f"error: terminated by signal {number}\n")
        raise SystemExit(128 + number) from None
    sys.exit(code if isinstance(code, int) else 0)
