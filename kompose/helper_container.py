"""Running a program in a short-lived helper container (the direct dump transport), and removing it.

A helper is created from the database container's image, joins that container's network
namespace and gets the dump directory bind-mounted; the program writes its output file
itself, so nothing crosses the exec attach stream. Every helper carries labels naming the
directory and kompose's pid: it is removed in a ``finally`` (failure, timeout, Ctrl-C,
SIGTERM), and one left by a SIGKILLed kompose is removed by the next run of that stack.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

from kompose.errors import DockerError

HELPER_LABEL = "io.kompose.helper"
DIRECTORY_LABEL = "io.kompose.directory"
PID_LABEL = "io.kompose.pid"
STDERR_TAIL_LINES = 50
POLL_SECONDS = 0.25
# start writing the growing file back to disk every this many bytes, so the final fsync
# finds little left to write (the kernel would otherwise hold it all in the page cache)
WRITEBACK_EVERY = 32 << 20

# helpers running now, so an interrupted run (Ctrl-C in another thread) can remove them
_live: dict[str, object] = {}
_live_lock = threading.Lock()


@dataclass
class HelperResult:
    exit_code: int
    stderr: bytes  # the last lines the program wrote to stderr
    bytes_out: int  # the size of the output file when it finished


def _labels(directory: Path) -> dict[str, str]:
    return {HELPER_LABEL: "pg_dump", DIRECTORY_LABEL: str(directory), PID_LABEL: str(os.getpid())}


def run_to_file(
    client,
    image: str,
    network_of: str,
    directory: Path,
    mount_point: str,
    argv: Sequence[str],
    env: Mapping[str, str],
    user: str,
    output: Path,
    on_progress: Callable[[int], None] | None = None,
) -> HelperResult:
    """Run ``argv`` in a helper container and wait for it; the helper is removed whatever happens.

    ``image``: the image id to run; ``network_of``: the container whose network namespace it
    joins; ``directory`` is bind-mounted at ``mount_point``; ``env`` travels in the container's
    environment (never argv); ``output`` is the host path of the file the program writes,
    watched for progress and written back to disk as it grows. The exit code comes from the
    engine's wait. Raises DockerError when the engine refuses the helper or goes away.
    """
    from docker.errors import APIError, NotFound
    from docker.types import LogConfig, Mount

    api = client.api
    name = f"kompose-helper-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        created = api.create_container(
            image,
            name=name,
            entrypoint=[argv[0]],
            command=list(argv[1:]),
            environment={**env, "HOME": "/tmp"},
            user=user,
            labels=_labels(directory),
            host_config=api.create_host_config(
                network_mode=f"container:{network_of}",
                mounts=[Mount(target=mount_point, source=str(directory), type="bind")],
                # stderr is read back from the log: keep it small and readable whatever the daemon's default
                log_config=LogConfig(type="json-file", config={"max-size": "1m", "max-file": "1"}),
            ),
        )
    except NotFound as exc:
        raise DockerError(f"cannot create the helper container: {exc.explanation or exc}") from None
    except APIError as exc:
        raise DockerError(f"cannot create the helper container: {exc.explanation or exc}") from None
    helper_id = created["Id"]
    with _live_lock:
        _live[helper_id] = client
    finished = False
    try:
        try:
            api.start(helper_id)
        except APIError as exc:
            raise DockerError(f"cannot start the helper container: {exc.explanation or exc}") from None
        exit_code = _wait(api, helper_id, output, on_progress)
        stderr = b""
        if exit_code != 0:  # the error text is only needed for the error message
            try:
                stderr = api.logs(helper_id, stdout=False, stderr=True, tail=STDERR_TAIL_LINES)
            except APIError:
                pass
        size = output.stat().st_size if output.exists() else 0
        finished = True
        return HelperResult(exit_code, stderr, size)
    finally:
        if finished:
            # the helper has exited: remove it while kompose checks and renames the dump (a
            # non-daemon thread, so the interpreter waits for it before exiting)
            threading.Thread(target=_remove_and_forget, args=(api, helper_id), name="kompose-helper-rm").start()
        else:
            _remove_and_forget(api, helper_id)


def _remove_and_forget(api, helper_id: str) -> None:
    try:
        _remove(api, helper_id)
    finally:
        with _live_lock:
            _live.pop(helper_id, None)


def _wait(api, helper_id: str, output: Path, on_progress: Callable[[int], None] | None) -> int:
    """Wait for the helper to exit (no request timeout: a dump may take hours) while watching ``output``."""
    from docker.errors import APIError, NotFound

    result: dict = {}

    def wait() -> None:
        try:
            result["status"] = api.wait(helper_id, timeout=None)
        except (APIError, NotFound) as exc:
            result["error"] = exc
        except Exception as exc:  # the engine connection broke
            result["error"] = exc

    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    watcher = _Writeback(output)
    try:
        # joining with a timeout keeps the main thread responsive to Ctrl-C / SIGTERM
        while waiter.is_alive():
            waiter.join(POLL_SECONDS)
            grown = watcher.poll()
            if grown and on_progress:
                on_progress(grown)
    finally:
        watcher.close()
    if "error" in result:
        exc = result["error"]
        raise DockerError(f"lost the helper container while waiting for it: {getattr(exc, 'explanation', None) or exc}")
    status = result["status"]
    if status.get("Error"):
        raise DockerError(f"the helper container failed: {status['Error']}")
    return int(status.get("StatusCode", -1))


class _Writeback:
    """Follows a file another process is writing: reports growth, starts writing it back to disk early."""

    def __init__(self, path: Path):
        self.path = path
        self.size = 0
        self.flushed = 0
        self.fd: int | None = None

    def poll(self) -> int:
        try:
            size = self.path.stat().st_size
        except OSError:
            return 0
        grown, self.size = size - self.size, size
        if size - self.flushed >= WRITEBACK_EVERY:
            try:
                if self.fd is None:
                    self.fd = os.open(self.path, os.O_RDONLY)
                # starts writeback of the dirty pages without waiting for it
                os.posix_fadvise(self.fd, self.flushed, 0, os.POSIX_FADV_DONTNEED)
                self.flushed = size
            except OSError:
                pass  # only an optimisation: the fsync before the rename is what makes it durable
        return max(grown, 0)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _remove(api, helper_id: str) -> None:
    from docker.errors import APIError, NotFound

    for attempt in range(3):
        try:
            api.remove_container(helper_id, force=True)
            return
        except NotFound:
            return
        except APIError as exc:
            # "removal already in progress" is as good as done
            if "in progress" in str(exc):
                return
            time.sleep(0.2 * (attempt + 1))
        except Exception:
            time.sleep(0.2 * (attempt + 1))


def remove_leftovers(client, directory: Path) -> list[str]:
    """Remove the helper containers labelled for ``directory`` (left by a killed run). Returns their names.

    Called under the stack's lock, so no live run of this stack owns them.
    """
    api = client.api
    found = api.containers(all=True, filters={"label": [f"{HELPER_LABEL}", f"{DIRECTORY_LABEL}={directory}"]})
    names = []
    for info in found:
        _remove(api, info["Id"])
        names.append((info.get("Names") or [info["Id"][:12]])[0].lstrip("/"))
    return names


def remove_live() -> None:
    """Remove every helper this process is running now (an interrupted run calls it)."""
    with _live_lock:
        live = list(_live.items())
    for helper_id, client in live:
        _remove(client.api, helper_id)
