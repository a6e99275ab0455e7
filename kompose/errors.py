"""The error hierarchy a user can cause, and the exit codes kompose returns."""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # at least one stack failed
    USAGE = 2  # bad command line or configuration
    NO_STACK = 3  # the pattern matched no stack
    LOCKED = 4  # stacks were skipped because another run holds their lock


class KomposeError(Exception):
    """An error with a message meant for the user; the CLI prints it as one line."""

    exit_code = ExitCode.FAILED

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class UsageError(KomposeError):
    exit_code = ExitCode.USAGE


class ConfigError(KomposeError):
    """A malformed .env, hooks.sh or setting."""

    exit_code = ExitCode.USAGE


class NoDatabaseError(ConfigError):
    """A database command selected a stack that has no database (DB_NAME unset)."""


class NoStackError(KomposeError):
    exit_code = ExitCode.NO_STACK


class HookError(KomposeError):
    """A hook failed, timed out or could not be run."""


class DockerError(KomposeError):
    """The engine, a container or an exec failed."""


class DumpError(KomposeError):
    """A dump file is missing, incomplete or unusable."""


class DatabaseError(KomposeError):
    """A PostgreSQL tool or statement failed."""


class LockedError(KomposeError):
    exit_code = ExitCode.LOCKED


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: unwinds like Ctrl-C, so a run cleans up after itself before it exits."""

    def __init__(self, signal_number: int):
        super().__init__(signal_number)
        self.signal_number = signal_number


def last_lines(output: bytes | str, count: int = 3, empty: str = "") -> str:
    """The last ``count`` non-blank lines of a tool's output, joined with ' | ': the part of an
    error message that says why (the whole output goes to the stack's log lines)."""
    text = output.decode("utf-8", "replace") if isinstance(output, bytes) else output
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(lines[-count:]) or empty
