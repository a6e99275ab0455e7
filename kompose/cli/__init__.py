"""The command line: arguments, the command table, and the one error boundary."""

from kompose.cli.app import main

__all__ = ["main"]
