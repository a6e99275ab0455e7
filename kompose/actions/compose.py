"""Any command kompose does not own: `docker compose <cmd> <args>` in the stack dir, between its hooks.

As kompose.sh does, every compose hook gets the whole compose command: `hook_pre_up up -d`
(`${args[0]}` is `up`). A request for help (`up --help`, `-h`) runs compose alone: no hook,
no network, no user code. Compose commands that connect a container's stdin (exec, run,
attach) get kompose's stdin when one stack is selected, and the terminal itself when
kompose runs at one; on several stacks they are refused when there is input or a terminal
they would share (``stdin_mode``).
"""

from __future__ import annotations

import os
import select
import stat
import sys

from kompose.actions.common import find_hooks, new_stack_plan
from kompose.context import Context
from kompose.errors import UsageError
from kompose.hooks.points import point_name
from kompose.plan.steps import Compose, Network
from kompose.plan.model import StackPlan

from kompose.stacks import Stack

# compose commands that create containers, and so need the shared network to exist
CREATING = {"up", "create", "run"}
# compose commands that connect a container's stdin to compose's
STDIN_COMMANDS = {"exec", "run", "attach"}
# their options that take a value (the word after one is not the service)
_VALUE_OPTIONS = {
    "-e", "--env", "-u", "--user", "-w", "--workdir", "--index", "-p", "--publish", "-v", "--volume",
    "-l", "--label", "--name", "--entrypoint", "--cap-add", "--cap-drop", "--env-from-file", "--pull",
    "--detach-keys",
}
HELP_WORDS = ("--help", "-h")


def compose_words(command: str, args: list[str]) -> list[str]:
    """The words that are compose's own: for exec/run those before the service (the rest is the
    container's command line), for any command those before a ``--``."""
    words: list[str] = []
    expect_value = False
    for word in args:
        if word == "--":
            break
        if expect_value:
            expect_value = False
        elif command in STDIN_COMMANDS and not word.startswith("-"):
            break  # the service: what follows is the container's program and its arguments
        elif word in _VALUE_OPTIONS:
            expect_value = True
        words.append(word)
    return words


def asks_help(command: str, args: list[str]) -> bool:
    """``kompose S up --help`` (or ``kompose S --help``): compose's help, and nothing else runs."""
    return command in HELP_WORDS or any(word in HELP_WORDS for word in compose_words(command, args))


def _no_input(fd: int) -> bool:
    """True when reading ``fd`` would give nothing: /dev/null (or another non-terminal character
    device), an empty or fully read regular file, a pipe whose writer has closed it with nothing in it."""
    try:
        info = os.fstat(fd)
    except OSError:
        return True  # closed: nothing to read
    if stat.S_ISCHR(info.st_mode):
        return not os.isatty(fd)
    if stat.S_ISREG(info.st_mode):
        try:
            return os.lseek(fd, 0, os.SEEK_CUR) >= info.st_size
        except OSError:
            return False
    if stat.S_ISFIFO(info.st_mode) or stat.S_ISSOCK(info.st_mode):
        import fcntl
        import termios
        import array

        readable, _, _ = select.select([fd], [], [], 0)
        if not readable:
            return False  # a writer is still there: input may come
        pending = array.array("i", [0])
        try:
            fcntl.ioctl(fd, termios.FIONREAD, pending, True)
        except OSError:
            return False
        return pending[0] == 0  # readable with nothing in it: end of file (cron's closed pipe)
    return False


def stdin_mode(ctx: Context, command: str, args: list[str], stacks: int) -> str:
    """What compose's stdin is: "none" (/dev/null), "inherit" (kompose's stdin, output through
    kompose) or "terminal" (stdin, stdout and stderr are kompose's terminal, handed over as they are).

    Raises UsageError for a stdin command on several stacks when kompose has a terminal or input,
    which only one stack's program could have.
    """
    if command not in STDIN_COMMANDS or asks_help(command, args):
        return "none"
    try:
        fd = sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):
        return "none"
    own = compose_words(command, args)
    no_tty = any(w in ("-T", "--no-TTY", "--no-tty", "-d", "--detach") for w in own)
    terminal = os.isatty(fd)
    has_input = not terminal and not _no_input(fd)
    if stacks > 1:
        if has_input:
            raise UsageError(f"{command} on {stacks} stacks: its input can feed one stack only; select one stack")
        if terminal and not no_tty:
            raise UsageError(f"{command} on {stacks} stacks would hand the terminal to each in turn; select one "
                             f"stack, or add -T (no terminal, no input) to run it in every stack")
        return "none"
    if terminal and not no_tty and _stdout_is_terminal(ctx):
        return "terminal"
    return "inherit" if (terminal or has_input) else "none"


def _stdout_is_terminal(ctx: Context) -> bool:
    out = getattr(ctx.console, "out", None)
    try:
        return bool(out is not None and out.isatty() and not ctx.options.json)
    except (AttributeError, ValueError):
        return False


def plan(ctx: Context, stack: Stack, command: str, args: list[str], stdin: str = "none") -> StackPlan:
    stack_plan = new_stack_plan(ctx, stack, command)
    call = ("docker", "compose", command, *args)
    if asks_help(command, args):
        stack_plan.steps.append(Compose(call))
        return stack_plan
    hooks = find_hooks(ctx, stack, stack_plan)
    point = point_name(command)
    # as kompose.sh: the hook gets the compose command as typed (`hook_pre_up up -d`)
    stack_plan.steps += hooks.steps(f"pre_{point}", command, *args)
    network = stack_plan.env.get("NETWORK_NAME", "")
    if command in CREATING and network:
        stack_plan.steps.append(Network(network))
    stack_plan.steps.append(Compose(call, stdin=stdin))
    stack_plan.post += hooks.steps(f"post_{point}", command, *args)
    return stack_plan
