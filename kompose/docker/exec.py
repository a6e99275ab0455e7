"""Programs inside containers through the Engine API: exec streaming both ways (the attach
stream's frames demultiplexed here), the exit code from exec_inspect, stopping an exec, and
telling whether the container stopped or restarted meanwhile."""

from __future__ import annotations

import os
import signal
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import BinaryIO, Callable, Mapping, Sequence

from kompose.docker import engine_api
from kompose.errors import DockerError, DumpError

CHUNK = 1 << 20


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
    """Write all of ``data``: a raw file may take less than asked (a disk filling up).
    The chunk itself goes first (a Sink counts rows in it: a memoryview would cost it a copy)."""
    count = handle.write(data)
    if count == len(data):
        return
    if not count:
        raise OSError(f"a write of {len(data)} bytes wrote nothing")
    view = memoryview(data)[count:]
    while view:
        count = handle.write(view)
        if not count:  # never for a regular file, but a loop must not spin
            raise OSError(f"a write of {len(view)} bytes wrote nothing")
        view = view[count:]


def start_detached(client, container_id: str, argv: Sequence[str], env: Mapping[str, str]) -> str:
    """Start ``argv`` in a container and return at once (no stdin, its output discarded): the
    program runs to its end whatever kompose does meanwhile. Returns the exec id. Raises
    DockerError when the engine or the container is gone."""
    api = client.api
    try:
        exec_id = api.exec_create(container_id, list(argv), stdin=False, stdout=False, stderr=False,
                                  environment=dict(env), tty=False)["Id"]
        api.exec_start(exec_id, detach=True)
    except Exception as exc:
        # the SDK's errors, imported only now (as container_exec): `import docker` costs ≈ 0.3 s,
        # more than the rest of a small import's swap
        APIError, NotFound = engine_api.errors()
        if isinstance(exc, NotFound):
            raise DockerError(f"container {container_id[:12]} no longer exists") from None
        if isinstance(exc, APIError):
            raise DockerError(f"cannot exec in container {container_id[:12]}: {exc.explanation or exc}") from None
        raise
    return exec_id


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
    api = client.api
    try:
        exec_id = api.exec_create(
            container_id, list(argv), stdin=stdin is not None, stdout=True, stderr=True,
            environment=dict(env), tty=False,
        )["Id"]
        stream = api.exec_start(exec_id, socket=True)
    except Exception as exc:
        # the SDK's errors, imported only now: `import docker` costs more than a small export
        APIError, NotFound = engine_api.errors()
        if isinstance(exc, NotFound):
            raise DockerError(f"container {container_id[:12]} no longer exists") from None
        if isinstance(exc, APIError):
            raise DockerError(f"cannot exec in container {container_id[:12]}: {exc.explanation or exc}") from None
        raise
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
    except BaseException:
        # Ctrl-C, SIGTERM, SIGHUP: end the program's input at once, so a restore sees the end
        # of its input and exits instead of waiting for more forever (holding its session
        # while kompose cleans up). It is not killed: one of kompose's own scripts, whose
        # input was sent whole, runs to its end (killing it between a DROP and a CREATE
        # would leave no live database at all).
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        raise
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
    deadline = time.monotonic() + 30
    while True:
        try:
            info = api.exec_inspect(exec_id)
        except Exception as exc:
            if isinstance(exc, engine_api.errors()[1]):
                raise DockerError(f"container {container_id[:12]} went away during the operation") from None
            raise
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


