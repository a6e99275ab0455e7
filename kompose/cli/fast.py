"""A bare ``kompose [OPTIONS] PATTERN COMMAND`` without typer: its import (and the click it
vendors) cost about a fifth of a small db:export's CPU, and a nightly ``kompose "*" db:export``
has no words to parse after its command.

``parse`` answers only for argv it reads exactly as typer would (tests/unit/test_startup.py
compares the two): kompose's global options in their plain spellings before the pattern, then
a pattern, then one of kompose's commands that builds a plan, and nothing after it. Anything else
(--help, --version, completion, a word after the command, an option after the pattern, a
clustered or unknown option, a value typer would refuse) is None: typer parses it (cli/app.py).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Mapping

# kompose's global options (cli/app.py's kompose()): spelling -> (parameter, kind)
FLAGS = {"--dry-run": "dry_run", "-n": "dry_run", "--verbose": "verbose", "-v": "verbose", "--json": "json_output",
         "--no-color": "no_color", "--debug": "debug"}
VALUED = {"--root": "root", "--env": "env", "-e": "env", "--network": "network", "--lock-timeout": "lock_timeout",
          "--log-file": "log_file", "--jobs": "jobs", "-j": "jobs"}
COMPLETION_VARIABLE = "_KOMPOSE_COMPLETE"


def parse(argv: list[str], environ: Mapping[str, str] = os.environ) -> dict | None:
    """run()'s keyword arguments for ``argv``, or None when typer has to parse it."""
    from kompose.cli.commands import PATTERN_COMMANDS

    if COMPLETION_VARIABLE in environ:
        return None
    values: dict = {"env": []}
    at = 0
    while at < len(argv) and argv[at].startswith("-"):
        word = argv[at]
        name, equals, value = word.partition("=")
        if word in FLAGS:
            values[FLAGS[word]] = True
            at += 1
            continue
        if name not in VALUED or (equals and not name.startswith("--")):
            return None  # --help, --version, --list, -nv, -eK=V, an option of no one's
        if not equals:
            if at + 1 >= len(argv):
                return None
            value = argv[at + 1]
            at += 1
        at += 1
        parameter = VALUED[name]
        if parameter == "env":
            values["env"].append(value)
        elif parameter in ("root", "log_file"):
            if not value:
                return None
            values[parameter] = Path(value)
        elif parameter == "network":
            values[parameter] = value
        elif parameter == "lock_timeout":
            try:
                number = float(value)
            except ValueError:
                return None
            if not math.isfinite(number):
                return None
            values[parameter] = number
        else:  # jobs: an integer from 1
            if not (value.isascii() and value.isdigit()) or int(value) < 1:
                return None
            values[parameter] = int(value)
    rest = argv[at:]
    if len(rest) != 2 or rest[0].startswith("-") or rest[1].startswith("-"):
        return None
    pattern, command = rest
    spec = PATTERN_COMMANDS.get(command)
    if spec is None or spec.plan is None or spec.bare is None:
        return None
    if "root" not in values and environ.get("KOMPOSE_ROOT"):
        values["root"] = Path(environ["KOMPOSE_ROOT"])
    values.update(pattern=pattern, command=command, args=[])
    if not values["env"]:
        values["env"] = None  # as typer gives a repeatable option never given
    return values


def main(values: dict) -> None:
    """cli/app.main's run for parsed ``values``: the same signals, the same last boundary."""
    import signal
    import sys

    from kompose.cli.run import _terminate, run

    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    try:
        code = run(**values)
    except KeyboardInterrupt as exc:  # before or after run()'s own boundary: one line, no traceback
        number = getattr(exc, "signal_number", signal.SIGINT)
        sys.stderr.write("error: interrupted\n" if number == signal.SIGINT else f"error: terminated by signal {number}\n")
        raise SystemExit(128 + number) from None
    sys.exit(code)
