"""The one command table: every command kompose itself answers, its arguments and what runs it.

A command with a pattern (``kompose PATTERN db:export``) either builds a Plan (``plan``: a module
under kompose.actions whose ``plan(ctx, stack, **kwargs)`` returns a StackPlan) or is a read-only
report (``report``: "module:function" called as ``function(ctx, stacks, **kwargs)``). A command
without a pattern (``kompose status``) has ``pattern=False`` and ``report`` called as
``function(ctx, **kwargs)``. Anything not in the table goes to ``docker compose``.
Each ``args`` names a Typer signature in cli/command_args.py: it parses the words after the command
and returns ``(kwargs, dry_run, json)`` (pattern commands) or ``kwargs`` (the others); ``bare`` is
what it returns for no words at all, so that a bare ``kompose PATTERN db:export`` never imports typer
(tests/unit/test_startup.py checks the two agree).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Collection

from kompose.errors import UsageError


@dataclass(frozen=True)
class Command:
    name: str
    args_name: str  # its parser in kompose.cli.command_args
    plan: str | None = None  # kompose.actions.<plan>
    report: str | None = None  # "kompose.<module>:<function>"
    pattern: bool = True  # False: `kompose NAME ...`, no pattern before it
    bare: Any = None  # what the parser returns for no words (None: parse them even then)

    @property
    def args(self) -> Callable:
        return getattr(importlib.import_module("kompose.cli.command_args"), self.args_name)

    def planner(self) -> Callable:
        return importlib.import_module(f"kompose.actions.{self.plan}").plan

    def reporter(self) -> Callable:
        module, _, function = self.report.partition(":")
        return getattr(importlib.import_module(module), function)


COMMANDS: dict[str, Command] = {c.name: c for c in (
    Command("db:export", "_export_args", plan="db_export",
            bare=({'fmt': None, 'compress': None, 'transport_name': 'auto'}, False, False)),
    Command("db:import", "_import_args", plan="db_import",
            bare=({'dump': None, 'in_place': False, 'force': False, 'allow_other_database': False,
                   'no_owner': False}, False, False)),
    Command("db:rollback", "_rollback_args", plan="db_rollback",
            bare=({}, False, False)),
    Command("db:cleanup", "_cleanup_args", plan="db_cleanup",
            bare=({'keep': None, 'keep_last': None, 'keep_daily': None, 'keep_weekly': None,
                   'keep_monthly': None}, False, False)),
    Command("db:verify", "_verify_args", plan="db_verify",
            bare=({'dump': None, 'all_dumps': False, 'remote': False, 'read_data': None}, False, False)),
    Command("db:drill", "_drill_args", plan="db_drill",
            bare=({'dump': None, 'from_repository': False}, False, False)),
    Command("db:push", "_push_args", plan="db_push",
            bare=({'dump': None, 'init': False}, False, False)),
    Command("db:pull", "_pull_args", plan="db_pull",
            bare=({'snapshot': None}, False, False)),
    Command("db:list", "_list_args", report="kompose.reports.listing:db_list_command"),
    Command("hooks", "_hooks_args", report="kompose.reports.hooks:hooks_command"),
    Command("hooks:check", "_hooks_check_args", report="kompose.reports.hooks:hooks_check_command"),
    # without a pattern: the first word is the command. A stack named like one is still
    # reachable with a comma pattern: `kompose cron, up -d`.
    Command("cron", "_cron_args", report="kompose.reports.cron:cron_command", pattern=False),
    Command("status", "_status_args", report="kompose.reports.status:status_command", pattern=False),
    Command("init", "_init_args", report="kompose.hooks.template:init_command", pattern=False),
)}
PATTERN_COMMANDS = {name: c for name, c in COMMANDS.items() if c.pattern}
ROOT_COMMANDS = {name: c for name, c in COMMANDS.items() if not c.pattern}


def parse_command_args(command: str, args: list[str], parser: Callable | None = None,
                        prog: str | None = None, outer_options: Collection[str] = ()):
    """Parse a kompose command's own arguments with Typer. Returns (kwargs, dry_run, json) or None after --help.

    ``outer_options``: kompose's own options (``--jobs``); one of them given after the command is
    refused with a hint saying where it goes."""
    import typer

    from kompose.cli import typer_fast

    parser = parser or COMMANDS[command].args
    sub = typer.Typer(add_completion=False, rich_markup_mode=None)
    sub.command(context_settings={"help_option_names": ["-h", "--help"]})(parser)
    click_command = typer.main.get_command(sub)
    typer_fast.install(click_command)
    typer_fast.plain_help(click_command)
    try:
        result = click_command.main(args=args, prog_name=prog or f"kompose PATTERN {command}", standalone_mode=False)
    except typer.TyperException as exc:  # typer >= 0.29 raises its (vendored) click's usage errors as these
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        option = getattr(exc, "option_name", None)
        if option and option in outer_options:
            before = "PATTERN " if COMMANDS[command].pattern else ""
            message += f" ({option} is kompose's option: it goes before the command: kompose {option} ... {before}{command})"
        raise UsageError(f"{command}: {message}") from None
    return None if isinstance(result, int) else result
