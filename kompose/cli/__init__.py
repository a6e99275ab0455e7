"""The command line: arguments, the command table, and the one error boundary."""

import sys


def main() -> None:
    """The entry point. Importing the CLI (typer) takes ~0.1 s: a Ctrl-C that lands then
    ends kompose with one line, like one later on, not with a traceback."""
    try:
        from kompose.cli import fast

        values = fast.parse(sys.argv[1:])
        if values is not None:  # a bare PATTERN COMMAND: no typer (cli/fast.py)
            fast.main(values)
        from kompose.cli.app import main as run
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        raise SystemExit(130) from None
    run()


__all__ = ["main"]
