"""The words of a command line before Typer parses them, and after: kompose's options written between
the pattern and the command, and commands that are typos of kompose's own (never sent to compose)."""

from __future__ import annotations


from kompose.cli.commands import COMMANDS, PATTERN_COMMANDS, ROOT_COMMANDS
from kompose.errors import UsageError

# `docker compose` v2's commands (and its plugins'): these go to compose as they are, never "did you mean"
COMPOSE_COMMANDS = frozenset(
    "alpha attach bridge build commit config cp create down events exec export images kill logs ls pause port "
    "ps publish pull push restart rm run scale start stats stop top unpause up version viz volumes wait watch".split()
)
CUTOFF = 0.75  # difflib ratio: "db:exprot", "hoks", "statu", "cronn", "inti" are near misses


def suggestion(word: str, names) -> str:
    """' (did you mean X?)' for the closest of ``names``, or ''."""
    import difflib  # only for a word that is not a command

    close = difflib.get_close_matches(word, list(names), n=1, cutoff=0.6 if ":" in word else CUTOFF)
    return f"; did you mean {close[0]}?" if close else ""


def check_compose_command(pattern: str, command: str) -> None:
    """Refuse a command meant for kompose that kompose does not have, before anything runs.

    A command in kompose's namespace (``db:…``, ``hooks:…``: any word with a colon, which compose
    never has), a command that takes no pattern (``kompose blog status``), and a near miss of one of
    kompose's commands that is not a compose command (``hoks``) are usage errors (exit 2).
    """
    if command in ROOT_COMMANDS:
        raise UsageError(f"{command} takes no pattern before it: kompose {command} {pattern}")
    if ":" in command:
        raise UsageError(f"unknown command {command}{suggestion(command, COMMANDS) or ' (see kompose --help)'}")
    if command in COMPOSE_COMMANDS or command.startswith("-"):
        return
    hint = suggestion(command, COMMANDS)
    if hint:
        raise UsageError(f"unknown command {command}{hint}")


def root_command_hint(pattern: str) -> str:
    """'; did you mean status?' when a pattern that matched nothing is a near miss of a command
    without a pattern (``kompose stauts``), else ''."""
    if any(c in pattern for c in ",*?["):
        return ""
    return suggestion(pattern, ROOT_COMMANDS)


def check_root_command(pattern: str) -> None:
    hint = root_command_hint(pattern)
    if hint:
        raise UsageError(f"unknown command {pattern}{hint}")


def option_table(click_command) -> dict[str, bool]:
    """kompose's own option words (``--json``, ``-n``) -> whether each takes a value."""
    table = {"-h": False, "--help": False}
    for param in getattr(click_command, "params", []):
        if getattr(param, "param_type_name", "") != "option":
            continue
        for name in list(param.opts) + list(param.secondary_opts):
            table[name] = not param.is_flag
    return table


def _option_words(argv: list[str], at: int, table: dict[str, bool]) -> int:
    """How many words the kompose option at ``argv[at]`` spans (0: not one of kompose's)."""
    word = argv[at]
    name = word.split("=", 1)[0]
    if name in table:
        return 2 if table[name] and "=" not in word else 1
    if not word.startswith("--") and len(word) > 2 and table.get(word[:2]):  # -j4, -eKEY=VALUE
        return 1
    return 0


def hoist_options(argv: list[str], table: dict[str, bool]) -> list[str]:
    """Move kompose's options written between the pattern and the command before the pattern:
    ``S --json db:list`` -> ``--json S db:list``. A command without a pattern (``status``) parses its
    own options; words after the command are the command's; an option that is not kompose's stays
    where it is (the CLI refuses it with a hint)."""
    at = 0
    while at < len(argv) and argv[at].startswith("-") and argv[at] not in ("-", "--"):
        at += _option_words(argv, at, table) or 1
    if at >= len(argv) or argv[at] == "--" or argv[at] in ROOT_COMMANDS:
        return argv
    pattern_at, after = at, at + 1
    moved: list[str] = []
    while after < len(argv) and argv[after].startswith("-") and argv[after] not in ("-", "--"):
        span = _option_words(argv, after, table)
        if not span:
            break
        moved += argv[after:after + span]
        after += span
    if not moved:
        return argv
    return argv[:pattern_at] + moved + [argv[pattern_at]] + argv[after:]


__all__ = ["COMPOSE_COMMANDS", "PATTERN_COMMANDS", "check_compose_command", "check_root_command", "hoist_options",
           "option_table", "root_command_hint", "suggestion"]
