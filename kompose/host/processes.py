"""The one place that runs things: bash hooks, the compose CLI and programs inside containers.

Everything here streams: output is handled line by line or chunk by chunk, with
only a bounded tail kept for error messages.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO, Callable, Mapping, Sequence

from kompose.errors import DockerError, DumpError, HookError, KomposeError

LineSink = Callable[[str], None]
CHUNK = 1 << 20
MAX_LINE = 8192  # longer lines are cut into pieces so one endless line cannot grow memory
TAIL_LINES = 20
# how long kompose waits for a hook's background children to release its output
BACKGROUND_GRACE = 2.0


# ------------------------------------------------------------ host processes


class _Tail:
    def __init__(self, size: int = TAIL_LINES):
        self.lines: deque[str] = deque(maxlen=size)

    def text(self) -> str:
        return "\n".join(self.lines)


def _pump(stream: BinaryIO, sink: LineSink, tail: _Tail, muted: threading.Event | None = None) -> None:
    """Forward a pipe's output line by line; never holds more than one line.

    Once ``muted`` is set the output is read and dropped: writers never block on a full
    pipe, and nothing more reaches the sink.
    """
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
                if len(pending) > MAX_LINE:
                    cut = MAX_LINE
                else:
                    break
            line, pending = pending[:cut], pending[cut + 1 if pending[cut : cut + 1] == b"\n" else cut :]
            text = line.decode("utf-8", "replace").rstrip("\r")
            tail.lines.append(text)
            sink(text)
    if pending:
        text = pending.decode("utf-8", "replace")
        tail.lines.append(text)
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
    tail: str
    # set when children of the process still held its output after it exited
    lingering: bool = False


def run_streamed(
    argv: Sequence[str],
    cwd: Path,
    env: Mapping[str, str],
    sink: LineSink,
    timeout: float | None = None,
    what: str = "command",
) -> ProcessResult:
    """Run a host process in its own process group, stdin /dev/null, output streamed to ``sink``.

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
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        raise KomposeError(f"cannot run {what}: {exc.strerror}") from None
    tail = _Tail()
    muted = threading.Event()
    reader = threading.Thread(target=_pump, args=(proc.stdout, sink, tail, muted), daemon=True)
    reader.start()
    _live_groups.add(proc)
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        proc.wait()
        reader.join(BACKGROUND_GRACE)
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
    # the reader goes on draining what lingering children write, but shows none of it
    muted.set()
    return ProcessResult(code, tail.text(), lingering=reader.is_alive())


@dataclass
class CapturedResult:
    exit_code: int
    stdout: bytes  # all of it (callers ask for bounded output: a JSON list, a summary line)
    tail: str  # the last lines of stderr


def run_captured(
    argv: Sequence[str],
    cwd: Path,
    env: Mapping[str, str],
    sink: LineSink,
    timeout: float | None = None,
    what: str = "command",
) -> CapturedResult:
    """Like run_streamed, but stdout is kept apart and returned whole; stderr streams to ``sink``.

    For programs whose stdout is data (restic's JSON), not lines for the terminal.
    """
    try:
        proc = subprocess.Popen(
            list(argv), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, start_new_session=True,
        )
    except OSError as exc:
        raise KomposeError(f"cannot run {what}: {exc.strerror}") from None
    tail = _Tail()
    chunks: list[bytes] = []

    def read_stdout() -> None:
        for chunk in iter(lambda: proc.stdout.read(65536), b""):
            chunks.append(chunk)

    readers = [threading.Thread(target=_pump, args=(proc.stderr, sink, tail), daemon=True),
               threading.Thread(target=read_stdout, daemon=True)]
    for reader in readers:
        reader.start()
    _live_groups.add(proc)
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        proc.wait()
        raise KomposeError(f"{what} timed out after {timeout:g} s; its process group was killed") from None
    except BaseException:
        _kill_group(proc, grace=1.0)
        raise
    finally:
        _live_groups.discard(proc)
    for reader in readers:
        reader.join(BACKGROUND_GRACE)
    return CapturedResult(code, b"".join(chunks), tail.text())


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
) -> ProcessResult:
    """Run one hook function of ``hooks_file`` in bash. Raises HookError when it fails or times out."""
    result = run_streamed(
        ["bash", "-c", _HOOK_SCRIPT, str(hooks_file), function, *args],
        cwd=cwd,
        env=env,
        sink=sink,
        timeout=timeout,
        what=f"hook {function}",
    )
    if result.exit_code != 0:
        raise HookError(f"hook {function} failed with exit code {result.exit_code}")
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


# ----------------------------------------------------------- container exec


@dataclass
class ExecResult:
    exit_code: int
    stdout: bytes  # captured output (empty when streamed to a file)
    stderr: bytes  # the last STDERR_KEEP bytes
    bytes_out: int


STDERR_KEEP = 64 * 1024


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data)


def _read_frames(
    sock: socket.socket,
    stdout_sink: Callable[[bytes], None],
    stderr_sink: Callable[[bytes], None],
) -> None:
    """Demultiplex the engine's attach stream: 8-byte headers (stream id, length), then payload."""
    while True:
        header = _recv_exact(sock, 8)
        if len(header) < 8:
            return
        stream_id, length = header[0], struct.unpack(">I", header[4:])[0]
        remaining = length
        while remaining:
            chunk = sock.recv(min(remaining, CHUNK))
            if not chunk:
                return
            remaining -= len(chunk)
            (stderr_sink if stream_id == 2 else stdout_sink)(chunk)


def _write_all(handle: BinaryIO, data: bytes) -> None:
    """Write all of ``data``: a raw file may take less than asked (a disk filling up)."""
    view = memoryview(data)
    while view:
        count = handle.write(view)
        if not count:  # never for a regular file, but a loop must not spin
            raise OSError(f"a write of {len(view)} bytes wrote nothing")
        view = view[count:]


def container_exec(
    client,
    container_id: str,
    argv: Sequence[str],
    env: Mapping[str, str],
    stdin: BinaryIO | None = None,
    stdout: BinaryIO | None = None,
    on_progress: Callable[[int], None] | None = None,
    on_start: Callable[[str], None] | None = None,
) -> ExecResult:
    """Run ``argv`` in a container through the Engine API, streaming both ways.

    ``env`` travels in the exec's environment (never argv). ``stdin`` is sent in
    1 MiB chunks then the socket is half-closed so the program sees EOF.
    ``stdout`` receives the output as it arrives; without it the output is
    captured and returned. The exit code comes from exec_inspect: a streamed
    exec never raises on failure. ``on_start`` gets the exec id once it runs (to
    stop it: stop_exec). Raises DockerError when the engine or the container goes
    away, DumpError when writing ``stdout`` fails.
    """
    from docker.errors import APIError, NotFound

    api = client.api
    try:
        exec_id = api.exec_create(
            container_id, list(argv), stdin=stdin is not None, stdout=True, stderr=True,
            environment=dict(env), tty=False,
        )["Id"]
        stream = api.exec_start(exec_id, socket=True)
    except NotFound:
        raise DockerError(f"container {container_id[:12]} no longer exists") from None
    except APIError as exc:
        raise DockerError(f"cannot exec in container {container_id[:12]}: {exc.explanation or exc}") from None
    sock: socket.socket = getattr(stream, "_sock", stream)
    if on_start:
        on_start(exec_id)
    # the client's 60 s timeout would abort a silent pg_dump (lock wait, big index)
    sock.settimeout(None)

    captured = bytearray()
    errors: deque[bytes] = deque()
    err_size = [0]
    written = [0]
    write_error: list[OSError] = []

    def on_stdout(chunk: bytes) -> None:
        if write_error:
            return
        if stdout is None:
            captured.extend(chunk)
        else:
            try:
                _write_all(stdout, chunk)
            except OSError as exc:
                write_error.append(exc)
                # stop the stream: the program gets EPIPE instead of filling a dead file
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
        written[0] += len(chunk)
        if on_progress:
            on_progress(len(chunk))

    def on_stderr(chunk: bytes) -> None:
        errors.append(chunk)
        err_size[0] += len(chunk)
        while err_size[0] - len(errors[0]) >= STDERR_KEEP and len(errors) > 1:
            err_size[0] -= len(errors.popleft())

    send_error: list[BaseException] = []
    try:
        if stdin is None:
            _read_frames(sock, on_stdout, on_stderr)
        else:
            # drain output on another thread while writing, or both sides block
            program_exited = threading.Event()

            def read_then_stop_sending() -> None:
                try:
                    _read_frames(sock, on_stdout, on_stderr)
                    program_exited.set()
                except OSError:
                    pass  # the writer sees the broken socket too and reports it
                # The output ends when the program exits. A program that stopped early (psql
                # at a bad line) no longer reads, and the engine neither reads the rest nor
                # closes the connection: a blocked sendall would wait for many seconds.
                # Shutting the socket down wakes it at once.
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

            reader = threading.Thread(target=read_then_stop_sending, daemon=True)
            reader.start()
            try:
                _send_input(sock, stdin, program_exited)
                sock.shutdown(socket.SHUT_WR)
            except OSError as exc:  # the program exited early (bad input): its stderr says why
                # input left unread is an error even when the program's exit code is 0
                send_error.append(
                    BrokenPipeError("the program exited before reading all of its input")
                    if program_exited.is_set() else exc
                )
            reader.join()
    except OSError as exc:
        raise DockerError(f"the stream from container {container_id[:12]} broke: {exc}") from None
    finally:
        try:
            stream.close()
        except Exception:
            pass

    if write_error:
        exc = write_error[0]
        raise DumpError(f"cannot write {getattr(stdout, 'name', 'output')}: {exc.strerror or exc}")
    exit_code = _exit_code(api, exec_id, container_id)
    if send_error and exit_code == 0:
        raise DockerError(f"the input stream to container {container_id[:12]} broke: {send_error[0]}")
    return ExecResult(exit_code, bytes(captured), b"".join(errors)[-STDERR_KEEP:], written[0])


def container_trouble(client, container_id: str, since: float, wait: float = 0.0) -> str | None:
    """Why a container can no longer be trusted to run tools, or None while it runs as before.

    "was removed", "stopped (exited)", or "restarted" (running again, but started after
    ``since``, a time.time() value). With ``wait`` > 0 a running container is asked again
    for that long: a shutdown ends the tools before the engine marks the container stopped.
    """
    from datetime import datetime

    from docker.errors import APIError, NotFound

    deadline = time.monotonic() + wait
    while True:
        try:
            state = client.api.inspect_container(container_id).get("State", {})
        except NotFound:
            return "was removed"
        except APIError:
            return None  # cannot tell: let the tool's own error speak
        if not state.get("Running"):
            return f"stopped ({state.get('Status', 'unknown')})"
        started = state.get("StartedAt", "")
        try:
            # RFC 3339 with nanoseconds: seconds are enough
            started_at = datetime.fromisoformat(started[:19] + "+00:00").timestamp()
        except ValueError:
            started_at = 0.0
        if state.get("Restarting") or started_at > since + 1:
            return "restarted"
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.1)


SENDFILE_CHUNK = 8 << 20


def _send_input(sock: socket.socket, stdin, stop: threading.Event) -> None:
    """Send all of ``stdin`` to the socket; BrokenPipeError once ``stop`` is set (the program exited).

    A plain file (one with a file descriptor) goes with sendfile(2): a dump of many GB never
    passes through Python. Anything else (decompressed input, a script) goes in 1 MiB chunks.
    """
    try:
        fd = stdin.fileno()
        offset = os.lseek(fd, 0, os.SEEK_CUR)
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both of the last two
        fd = None
    if fd is not None:
        while True:
            if stop.is_set():
                raise BrokenPipeError
            sent = os.sendfile(sock.fileno(), fd, offset, SENDFILE_CHUNK)
            if sent == 0:
                return
            offset += sent
    while True:
        chunk = stdin.read(CHUNK)
        if not chunk:
            return
        if stop.is_set():
            raise BrokenPipeError
        sock.sendall(chunk)


def _exit_code(api, exec_id: str, container_id: str) -> int:
    from docker.errors import NotFound

    deadline = time.monotonic() + 30
    while True:
        try:
            info = api.exec_inspect(exec_id)
        except NotFound:
            raise DockerError(f"container {container_id[:12]} went away during the operation") from None
        if not info.get("Running") and info.get("ExitCode") is not None:
            return int(info["ExitCode"])
        if time.monotonic() > deadline:
            raise DockerError(f"no exit code from container {container_id[:12]} (was it stopped?)")
        time.sleep(0.05)


def stop_exec(client, exec_id: str, container_id: str) -> bool:
    """Kill a running exec's process group (the engine makes each exec a session leader).

    The engine has no API for it: this works when the engine is local and kompose may
    signal its processes (the exec's host pid, checked to belong to the container).
    Returns True when the group was signalled or is gone, False when kompose cannot.
    """
    try:
        info = client.api.exec_inspect(exec_id)
    except Exception:
        return False
    pid = int(info.get("Pid") or 0)
    if not info.get("Running") or pid <= 0:
        return True
    try:
        with open(f"/proc/{pid}/cgroup", encoding="utf-8") as handle:
            if container_id not in handle.read():
                return False  # another pid namespace (remote engine, kompose in a container)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            os.killpg(pid, sig)
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline:
                os.killpg(pid, 0)  # raises ProcessLookupError once the group is gone
                time.sleep(0.05)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return True


# --------------------------------------------------------------------- files


def fsync_rename(src: Path, dst: Path) -> None:
    """Make ``src`` durable and give it its final name atomically."""
    with open(src, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(src, dst)
    dir_fd = os.open(dst.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
