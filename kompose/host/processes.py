"""The one place that runs host processes: bash hooks, the compose CLI, bash -n, shellcheck,
crontab, and the compression filters of dumps (programs inside containers: docker/exec.py).

Everything here streams: output is handed on line by line, never more than one line held;
every process runs in its own process group, which a time limit or an interrupt stops whole.

Built on subprocess, not on the ``sh`` package: measured on this machine kind (sh 2.4.0,
``bash -c true`` with an output callback, 50 calls), sh costs ~121 ms per call against ~3.9 ms
here, and ``import sh`` ~125 ms once — eight times scripts/bench's 15 ms budget per hook, and
half of the 0.30 s a whole small db:export may take. sh also waits for children that keep a
hook's output open, where run_streamed stops showing them after BACKGROUND_GRACE.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO, Callable, Mapping, Sequence

from kompose.errors import HookError, KomposeError

LineSink = Callable[[str], None]
CHUNK = 1 << 20
MAX_LINE = 8192  # longer lines are cut into pieces so one endless line cannot grow memory
# how long kompose waits for a hook's background children to release its output
BACKGROUND_GRACE = 2.0


# ------------------------------------------------------------ host processes


def cut_point(pending: bytes, limit: int, secrets: Sequence[bytes]) -> int:
    """Where to cut a line longer than ``limit`` so that no secret is split across two
    pieces (each piece is masked on its own): before a secret that spans ``limit``."""
    cut = limit
    for secret in secrets:  # longest first
        start = pending.find(secret, max(0, cut - len(secret) + 1), cut + len(secret) - 1)
        while start >= 0 and start < cut:
            if start + len(secret) > cut and start > 0:
                cut = start
                break
            start = pending.find(secret, start + 1, cut + len(secret) - 1)
    return cut


def _pump(stream: BinaryIO, sink: LineSink, muted: threading.Event | None = None,
          secrets: Sequence[bytes] = ()) -> None:
    """Forward a pipe's output line by line; never holds more than one line.

    Once ``muted`` is set the output is read and dropped: writers never block on a full
    pipe, and nothing more reaches the sink. A line longer than MAX_LINE is cut into
    pieces, never inside one of ``secrets``.
    """
    longest = max((len(s) for s in secrets), default=0)
    pending = b""
    fd = stream.fileno()
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        if muted is not None and muted.is_set():
            pending = b""
            continue
        pending += chunk
        while True:
            cut = pending.find(b"\n")
            if cut < 0:
                if len(pending) > MAX_LINE + longest:
                    cut = cut_point(pending, MAX_LINE, secrets)
                else:
                    break
            line, pending = pending[:cut], pending[cut + 1 if pending[cut : cut + 1] == b"\n" else cut :]
            text = line.decode("utf-8", "replace").rstrip("\r")
            sink(text)
    if pending:
        text = pending.decode("utf-8", "replace")
        sink(text)


def _kill_group(proc: subprocess.Popen, grace: float = 2.0) -> None:
    """SIGTERM the process's group, then SIGKILL what is left of it after ``grace`` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            proc.poll()  # reap the leader: a zombie would keep the group "alive"
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.02)


# process groups running now, so an interrupted parallel run (--jobs) can stop them:
# they run in their own sessions, out of reach of the terminal's Ctrl-C
_live_groups: set[subprocess.Popen] = set()


def kill_live_groups() -> None:
    """Stop every process group run_streamed is running now."""
    for proc in list(_live_groups):
        _kill_group(proc, grace=1.0)


@dataclass
class ProcessResult:
    exit_code: int
    # set when children of the process still held its output after it exited
    lingering: bool = False


def run_streamed(
    argv: Sequence[str],
    cwd: Path,
    env: Mapping[str, str],
    sink: LineSink,
    timeout: float | None = None,
    what: str = "command",
    err_sink: LineSink | None = None,
    stdin_passthrough: bool = False,
    pass_fds: Sequence[int] = (),
    after_start: Callable[[], None] | None = None,
) -> ProcessResult:
    """Run a host process in its own process group, stdin /dev/null (kompose's own with
    ``stdin_passthrough``), output streamed to ``sink`` (its stderr to ``err_sink`` when given,
    else merged into ``sink``).

    On timeout the whole group is stopped and HookError raised. A process whose
    background children keep its output open is waited for BACKGROUND_GRACE
    seconds after it exits; then their output is no longer shown, they are left
    alone, and ``lingering`` says so.
    """
    try:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=None if stdin_passthrough else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE if err_sink is not None else subprocess.STDOUT,
            start_new_session=True,
            pass_fds=tuple(pass_fds),
        )
    except OSError as exc:
        raise KomposeError(f"cannot run {what}: {exc.strerror}") from None
    muted = threading.Event()
    if after_start:
        after_start()
    from kompose.env import secret_values

    secrets = [value.encode("utf-8", "surrogateescape") for value in secret_values(env)]
    reader = threading.Thread(target=_pump, args=(proc.stdout, sink, muted, secrets), daemon=True)
    reader.start()
    err_reader = None
    if err_sink is not None:
        err_reader = threading.Thread(target=_pump, args=(proc.stderr, err_sink, muted, secrets), daemon=True)
        err_reader.start()
    _live_groups.add(proc)
    try:
        code = wait_exit(proc, timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        proc.wait()
        reader.join(BACKGROUND_GRACE)
        if err_reader is not None:
            err_reader.join(BACKGROUND_GRACE)
        muted.set()
        raise HookError(f"{what} timed out after {timeout:g} s; its process group was killed") from None
    except BaseException:
        # Ctrl-C or an error in kompose itself: leave nothing of ours running
        _kill_group(proc, grace=1.0)
        muted.set()
        raise
    finally:
        _live_groups.discard(proc)
    reader.join(BACKGROUND_GRACE)
    if err_reader is not None:
        err_reader.join(max(0.05, BACKGROUND_GRACE if not reader.is_alive() else 0.05))
    # the reader goes on draining what lingering children write, but shows none of it
    muted.set()
    return ProcessResult(code, lingering=reader.is_alive() or (err_reader is not None and err_reader.is_alive()))


def wait_exit(proc: subprocess.Popen, timeout: float | None) -> int:
    """``proc.wait(timeout)`` without its polling: Popen.wait with a timeout sleeps in steps
    growing to 50 ms, so a hook of 10 ms was seen 10-30 ms late. The kernel tells the exit through a
    pidfd (Linux 5.3) at once; elsewhere Popen's own wait. Raises subprocess.TimeoutExpired."""
    if timeout is None:
        return proc.wait()
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # no pidfd here, or already reaped
        return proc.wait(timeout=timeout)
    import select

    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        deadline = time.monotonic() + timeout
        while not poller.poll(max(0, min(deadline - time.monotonic(), 86400.0)) * 1000):
            if time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(proc.args, timeout)
    finally:
        os.close(pidfd)
    return proc.wait()


def run_in_terminal(argv: Sequence[str], cwd: Path, env: Mapping[str, str], what: str = "command") -> int:
    """Run a host process on kompose's own terminal (stdin, stdout, stderr as they are) and return
    its exit code (128 + N when a signal N ended it).

    It stays in kompose's process group, the terminal's foreground group, so that it may read the
    terminal and gets the keyboard's signals itself; kompose ignores SIGINT and SIGQUIT meanwhile
    (the program decides what Ctrl-C means). When kompose is stopped otherwise (SIGTERM), the
    program is stopped too.
    """
    import sys

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    try:
        proc = subprocess.Popen(list(argv), cwd=cwd, env=dict(env))
    except OSError as exc:
        raise KomposeError(f"cannot run {what}: {exc.strerror}") from None
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGQUIT)}
    try:
        code = proc.wait()
    except BaseException:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 128 - code if code < 0 else code


# The hook runner: source hooks.sh, make sure the function exists, call it.
# First it starts a watcher so that a hook never outlives a kompose that died while it
# ran (even by SIGKILL, which kompose cannot catch): when kompose ($PPID) is gone and the
# hook's shell ($$) still runs, the watcher stops the hook's whole process group. It is
# double-forked so that a hook's own `wait` does not wait for it, and it ends by itself
# within a second of the hook's end.
_HOOK_SCRIPT = (
    '( ( while kill -0 "$PPID" && kill -0 $$; do sleep 1; done\n'
    '    if ! kill -0 "$PPID" && kill -0 $$; then kill -TERM 0; fi ) </dev/null >/dev/null 2>&1 & )\n'
    '. "$0" || { echo "kompose: sourcing $0 failed" >&2; exit 126; }\n'
    'declare -F "$1" >/dev/null || { echo "kompose: $1 is not defined in $0" >&2; exit 127; }\n'
    # tell kompose the function is called: a hooks.sh that exits while sourced (`exit 0` at
    # its end) never gets here, and its hook did not run
    'printf called >&"$KOMPOSE_HOOK_CALLED_FD" && exec {KOMPOSE_HOOK_CALLED_FD}>&-; unset KOMPOSE_HOOK_CALLED_FD\n'
    '"$@"\n'
)


def run_hook(
    hooks_file: Path,
    function: str,
    args: Sequence[str],
    env: Mapping[str, str],
    cwd: Path,
    timeout: float,
    sink: LineSink,
    err_sink: LineSink | None = None,
) -> ProcessResult:
    """Run one hook function of ``hooks_file`` in bash. Raises HookError when it fails, times
    out, or was never called (hooks.sh ended the shell while it was sourced)."""
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    open_ends = [write_end]

    def close_write_end() -> None:  # once, so that a number another thread reuses is never closed
        while open_ends:
            os.close(open_ends.pop())

    try:
        result = run_streamed(
            ["bash", "-c", _HOOK_SCRIPT, str(hooks_file), function, *args],
            cwd=cwd,
            env={**env, "KOMPOSE_HOOK_CALLED_FD": str(write_end)},
            sink=sink,
            timeout=timeout,
            what=f"hook {function}",
            pass_fds=(write_end,),
            after_start=close_write_end,
            err_sink=err_sink,
        )
        try:
            called = os.read(read_end, 16) == b"called"
        except BlockingIOError:  # nothing written (a child of the sourced file may hold the pipe)
            called = False
    finally:
        os.close(read_end)
        close_write_end()
    if result.exit_code != 0:
        raise HookError(f"hook {function} failed with exit code {result.exit_code}")
    if not called:
        raise HookError(f"hook {function} did not run: {hooks_file.name} ended the shell while it was sourced "
                        "(an `exit` outside a function?)")
    return result


@lru_cache(maxsize=1)
def compose_command() -> tuple[str, ...]:
    """``docker compose`` (v2 plugin) when it runs, else ``docker-compose`` (v1)."""
    docker_cli = shutil.which("docker")
    if docker_cli:
        probe = subprocess.run(
            [docker_cli, "compose", "version"], stdin=subprocess.DEVNULL, capture_output=True
        )
        if probe.returncode == 0:
            return (docker_cli, "compose")
    legacy = shutil.which("docker-compose")
    if legacy:
        return (legacy,)
    raise KomposeError("neither 'docker compose' nor 'docker-compose' is installed")




@dataclass
class Captured:
    exit_code: int
    stdout: str
    stderr: str


def run_captured(argv: Sequence[str], input: str | bytes | None = None, timeout: float | None = 60.0,
                 what: str = "command", env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Captured:
    """Run a short host program to its end, output captured as text (bash -n, shellcheck, crontab).

    Raises KomposeError when it cannot start or outlives ``timeout`` (its group is killed)."""
    if isinstance(input, str):
        input = input.encode()
    try:
        proc = subprocess.Popen(
            list(argv), stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
            env=dict(env) if env is not None else None, cwd=cwd,
        )
    except OSError as exc:
        raise KomposeError(f"cannot run {what}: {exc.strerror or exc}") from None
    try:
        out, err = proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        proc.communicate()
        raise KomposeError(f"{what} timed out after {timeout:g} s") from None
    except BaseException:
        _kill_group(proc, grace=1.0)
        raise
    return Captured(proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))


PIPE, DEVNULL = subprocess.PIPE, subprocess.DEVNULL


def spawn_filter(argv: Sequence[str], stdin, stdout, stderr, what: str) -> subprocess.Popen:
    """Start a streaming filter (zstd) between file objects or pipes. It stays in kompose's process
    group: Ctrl-C at the terminal reaches it too, and the caller's abort() kills it otherwise."""
    try:
        return subprocess.Popen(list(argv), stdin=stdin, stdout=stdout, stderr=stderr)
    except OSError as exc:
        raise KomposeError(f"cannot run {what}: {exc.strerror or exc}") from None


class Streaming:
    """A host program whose stdin or stdout is a pipe kompose streams through (restic backup --stdin,
    restic dump), in a session of its own (a killed kompose does not take it down by signal: what it
    leaves is the caller's design), stderr kept in a temporary file for the one-line reason.
    ``into``: a file descriptor its stdout is written to directly (restic dump into a partial file)."""

    def __init__(self, argv: Sequence[str], what: str, env: Mapping[str, str] | None = None, cwd: Path | None = None,
                 stdin: bool = False, stdout: bool = False, into: int | None = None):
        import tempfile

        self.what = what
        self._errors = tempfile.TemporaryFile()
        self._output = None if stdout or into is not None else tempfile.TemporaryFile()
        target = PIPE if stdout else into if into is not None else self._output
        try:
            self.proc = subprocess.Popen(
                list(argv), stdin=PIPE if stdin else DEVNULL, stdout=target,
                stderr=self._errors, start_new_session=True, env=dict(env) if env is not None else None, cwd=cwd,
            )
        except OSError as exc:
            self._errors.close()
            raise KomposeError(f"cannot run {what}: {exc.strerror or exc}") from None
        _live_groups.add(self.proc)

    @property
    def stdin(self):
        return self.proc.stdin

    @property
    def stdout(self):
        return self.proc.stdout

    def kill(self) -> Captured:
        """Stop it now (SIGKILL to its group: a backup killed before it read end-of-input writes no snapshot);
        what wait() returns (it may have ended on its own just before)."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return self.wait()

    def wait(self) -> Captured:
        """Close our ends, wait for it; its exit code, what it wrote to a file stdout, its stderr."""
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                try:
                    pipe.close()
                except OSError:
                    pass
        code = self.proc.wait()
        _live_groups.discard(self.proc)
        out = ""
        if self._output is not None:
            self._output.seek(0)
            out = self._output.read().decode("utf-8", "replace")
        self._errors.seek(0)
        err = self._errors.read()[-65536:].decode("utf-8", "replace")
        return Captured(code, out, err)
