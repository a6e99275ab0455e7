"""Running a program in a short-lived helper container (the direct dump transport), and removing it.

A helper is created from the database container's image, joins that container's network
namespace and gets exactly one file of the dump directory bind-mounted (the named pipe
kompose reads, or the partial dump); the program writes into it, so nothing crosses the
exec attach stream. Mounting the file rather than the directory means the helper sees
nothing else of the stack (its .env, hooks.sh, older dumps), and an engine that does not
share this host's files refuses the mount before pg_dump runs, instead of pg_dump writing
a whole dump into that engine's own view of the directory. Every helper carries labels
naming the directory and kompose's pid: it is removed in a ``finally`` (failure, timeout,
Ctrl-C, SIGTERM), and one left by a SIGKILLed kompose is removed by the next run of that
stack.
"""

from __future__ import annotations

import errno
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

from kompose.docker import engine_api
from kompose.errors import DockerError, DumpError
from kompose.host.copier import _NoPipe, _PipeCopier, _Writeback

HELPER_LABEL = "io.kompose.helper"
DIRECTORY_LABEL = "io.kompose.directory"
PID_LABEL = "io.kompose.pid"
STDERR_TAIL_LINES = 50
POLL_SECONDS = 0.25

# helpers running now, so an interrupted run (Ctrl-C in another thread) can remove them
_live: dict[str, object] = {}
_live_lock = threading.Lock()


@dataclass
class HelperResult:
    exit_code: int
    stderr: bytes  # the last lines the program wrote to stderr
    bytes_out: int  # the size of the output file when it finished
    sha256: str | None = None  # of the whole output file, when asked for (hash_output) or piped
    note: str = ""  # something the user should read (the pipe could not be used)
    tapped: bool = False  # every byte of the output passed through ``tap`` (run_to_file's)


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
    hash_output: bool = False,
    pipe: Path | None = None,
    tap: Callable[[bytes], object] | None = None,
) -> HelperResult:
    """Run ``argv`` in a helper container and wait for it; the helper is removed whatever happens.

    ``image``: the image id to run; ``network_of``: the container whose network namespace it
    joins; the file the program writes (``pipe``, else ``output``, created empty here) is
    bind-mounted at ``mount_point``/its name; ``directory`` names the stack in the helper's
    labels; ``env`` travels in the container's environment (never argv); ``output`` is the
    host path of the file the program writes, watched for progress and written back to disk
    as it grows. ``hash_output``: the program
    only appends to ``output``, so its sha256 is computed as it grows (from the page cache,
    beside the dump instead of after it). ``pipe``: the program writes into this named pipe
    (created here, removed afterwards) and kompose copies it into ``output`` in large writes,
    hashing it on the way; the sha256 is then always computed, and ``tap`` (when given) is
    called with every block copied (``tapped`` in the result says it saw them all). The exit code comes from the
    engine's wait. Raises DockerError when the engine refuses the helper or goes away (or
    cannot see the file: it does not share this host's files), and DumpError when ``output``
    cannot be written.
    """
    api = client.api
    name = f"kompose-helper-{os.getpid()}-{secrets.token_hex(4)}"
    copier = None
    note = ""
    if pipe:
        try:
            copier = _PipeCopier(pipe, output, tap)
        except _NoPipe as exc:
            # a filesystem without named pipes (some network or FUSE mounts): pg_dump writes
            # the file itself, and kompose hashes it as it grows
            argv = _writing_itself(argv, mount_point, pipe, output)
            hash_output = True
            note = f"no named pipe in {directory} ({exc.reason}): pg_dump writes {output.name} itself"
        except OSError as exc:
            raise DumpError(f"cannot write {output}: {exc.strerror or exc}") from None
    mounted = copier.pipe if copier else output
    if not copier:
        try:  # the file the helper's mount needs, 0600 like every dump: the helper runs as kompose's uid
            # (transport.helper_user), or as a rootless engine's root, which is kompose's user
            fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            try:
                os.fchmod(fd, 0o600)
            finally:
                os.close(fd)
        except OSError as exc:
            raise DumpError(f"cannot write {output}: {exc.strerror or exc}") from None
    secret_dir = None
    try:
        # the password never enters the container's config (docker inspect shows its
        # environment): it travels in a 0600 password file that only the helper mounts
        env, extra_mounts, secret_dir = _password_file(env, output.parent)
        result = _run(client, api, name, image, network_of, directory, mounted, mount_point, argv, env, user,
                      output, on_progress, hash_output, copier, extra_mounts)
        result.note = note
        return result
    finally:
        if copier:
            copier.close()
        if secret_dir is not None:
            _remove_secret_dir(secret_dir)


SECRET_DIR_PREFIX = ".kompose-secret-"
PASSFILE_TARGET = "/run/kompose/pgpass"


def pgpass_line(password: str) -> str:
    """A .pgpass line matching every host, port, database and user: ``:`` and ``\\`` escaped."""
    return "*:*:*:*:" + password.replace("\\", "\\\\").replace(":", "\\:") + "\n"


def _password_file(env: Mapping[str, str], where: Path) -> tuple[dict[str, str], list[tuple[str, Path]], Path | None]:
    """``env`` without PGPASSWORD, pointing libpq at a password file instead, and the (target,
    source) mount of that file. The file lives in a 0700 directory beside the dump (the engine
    sees that directory, as it must see the dump) and is removed after the helper; one left by
    a SIGKILLed kompose is removed by the next run of the stack (remove_leftovers)."""
    env = dict(env)
    password = env.pop("PGPASSWORD", None)
    if password is None:
        return env, [], None
    if "\n" in password or "\r" in password:
        raise DockerError("a password with a line break cannot travel in a password file: use --transport exec")
    import tempfile

    secret_dir = None
    try:
        secret_dir = Path(tempfile.mkdtemp(prefix=f"{SECRET_DIR_PREFIX}{os.getpid()}-", dir=where))
        passfile = secret_dir / "pgpass"
        fd = os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.fchmod(fd, 0o600)  # whatever the umask: libpq ignores a file others may read
            data = pgpass_line(password).encode("utf-8")
            if os.write(fd, data) != len(data):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        finally:
            os.close(fd)
    except BaseException as exc:  # a full disk: nothing of it stays
        if secret_dir is not None:
            _remove_secret_dir(secret_dir)
        if isinstance(exc, OSError):
            raise DumpError(f"cannot write the password file for the helper in {where}: "
                            f"{exc.strerror or exc}") from None
        raise
    env["PGPASSFILE"] = PASSFILE_TARGET
    return env, [(PASSFILE_TARGET, passfile)], secret_dir


def _remove_secret_dir(secret_dir: Path) -> None:
    import shutil

    shutil.rmtree(secret_dir, ignore_errors=True)


def remove_secret_leftovers(directory: Path) -> list[str]:
    """Remove password files left beside the dumps by a kompose that was killed (its pid gone)."""
    removed = []
    try:
        entries = list(directory.glob(f"{SECRET_DIR_PREFIX}*"))
    except OSError:
        return removed
    for entry in entries:
        pid = entry.name[len(SECRET_DIR_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            _remove_secret_dir(entry)
            removed.append(entry.name)
    return removed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _writing_itself(argv: Sequence[str], mount_point: str, pipe: Path, output: Path) -> list[str]:
    """``argv`` writing ``output`` instead of ``pipe`` (and letting pg_dump sync it)."""
    through_pipe = f"--file={mount_point}/{pipe.name}"
    return [f"--file={mount_point}/{output.name}" if word == through_pipe else word
            for word in argv if word != "--no-sync"]


def _run(client, api, name, image, network_of, directory, mounted: Path, mount_point, argv, env, user, output,
         on_progress, hash_output, copier: "_PipeCopier | None",
         extra_mounts: Sequence[tuple[str, Path]] = ()) -> HelperResult:
    # known by its name before the engine is asked: a SIGTERM or Ctrl-C while it is being
    # created (the engine may have made it, kompose not yet heard) still removes it
    with _live_lock:
        _live[name] = client
    try:
        return _create_and_run(client, api, name, image, network_of, directory, mounted, mount_point, argv, env,
                               user, output, on_progress, hash_output, copier, extra_mounts)
    except BaseException as exc:
        # interrupted (SIGTERM, Ctrl-C) while the engine was creating it: the engine may finish the
        # create a moment after kompose gave up waiting, so a "no such container" is watched a little
        _remove(api, name, appear_wait=0.0 if isinstance(exc, DockerError) else 3.0)
        raise
    finally:
        with _live_lock:
            _live.pop(name, None)


def _create_and_run(client, api, name, image, network_of, directory, mounted: Path, mount_point, argv, env, user,
                    output, on_progress, hash_output, copier, extra_mounts) -> HelperResult:
    mounts = [{"Target": f"{mount_point}/{mounted.name}", "Source": str(mounted), "Type": "bind", "ReadOnly": False},
              *({"Target": target, "Source": str(source), "Type": "bind", "ReadOnly": True}
                for target, source in extra_mounts)]
    try:
        created = api.create_container(
            image,
            name=name,
            entrypoint=[argv[0]],
            command=list(argv[1:]),
            environment={**env, "HOME": "/tmp"},
            user=user,
            labels=_labels(directory),
            host_config={
                "NetworkMode": f"container:{network_of}",
                "Mounts": mounts,
                # stderr is read back from the log: keep it small and readable whatever the daemon's default
                "LogConfig": {"Type": "json-file", "Config": {"max-size": "1m", "max-file": "1"}},
            },
        )
    except Exception as exc:
        APIError, NotFound = engine_api.errors()  # imported only now: the SDK's import costs more than a small dump
        if isinstance(exc, NotFound):
            raise DockerError(f"cannot create the helper container: {exc.explanation or exc}") from None
        if not isinstance(exc, APIError):
            raise
        explanation = str(exc.explanation or exc)
        if "bind source path does not exist" in explanation:
            raise DockerError(
                f"the engine cannot see {mounted} (it does not share this host's files): use --transport exec"
            ) from None
        raise DockerError(f"cannot create the helper container: {explanation}") from None
    helper_id = created["Id"]
    with _live_lock:
        _live[helper_id] = client
    finished = False
    try:
        try:
            api.start(helper_id)
        except Exception as exc:
            if not isinstance(exc, engine_api.errors()[0]):
                raise
            raise DockerError(f"cannot start the helper container: {exc.explanation or exc}") from None
        watcher = copier or _Writeback(output, hash_output)
        try:
            exit_code = _wait(api, helper_id, watcher, on_progress)
            sha256 = watcher.finish() if exit_code == 0 else None
        finally:
            watcher.close()
        if copier and copier.error is not None:  # kompose could not write the dump (disk full, ...)
            raise DumpError(f"cannot write {output}: {copier.error.strerror or copier.error}")
        stderr = b""
        if exit_code != 0:  # the error text is only needed for the error message
            try:
                stderr = api.logs(helper_id, stdout=False, stderr=True, tail=STDERR_TAIL_LINES)
            except Exception as exc:
                if not isinstance(exc, engine_api.errors()[0]):
                    raise
        size = output.stat().st_size if output.exists() else 0
        finished = True
        tapped = bool(copier and copier.tap is not None and not copier.tap_failed and copier.size == size)
        return HelperResult(exit_code, stderr, size, sha256, tapped=tapped)
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


def _wait(api, helper_id: str, watcher: "_Writeback", on_progress: Callable[[int], None] | None) -> int:
    """Wait for the helper to exit (no request timeout: a dump may take hours) while ``watcher`` follows its file."""
    result: dict = {}

    def wait() -> None:
        try:
            result["status"] = api.wait(helper_id, timeout=None)
        except Exception as exc:  # the engine's error, or the engine connection broke
            result["error"] = exc

    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    # joining with a timeout keeps the main thread responsive to Ctrl-C / SIGTERM
    while waiter.is_alive():
        waiter.join(POLL_SECONDS)
        grown = watcher.poll()
        if grown and on_progress:
            on_progress(grown)
    if "error" in result:
        exc = result["error"]
        raise DockerError(f"lost the helper container while waiting for it: {getattr(exc, 'explanation', None) or exc}")
    status = result["status"]
    if status.get("Error"):
        raise DockerError(f"the helper container failed: {status['Error']}")
    return int(status.get("StatusCode", -1))


def _remove(api, helper_id: str, appear_wait: float = 0.0) -> None:
    """Remove the helper (by id or name). ``appear_wait``: a helper not there (yet) may still be
    being created by the engine; look again for that long before taking "not found" as done."""
    deadline = time.monotonic() + appear_wait
    attempt = 0
    while attempt < 3:
        try:
            api.remove_container(helper_id, force=True)
            return
        except Exception as exc:
            APIError, NotFound = engine_api.errors()
            if isinstance(exc, NotFound):
                if time.monotonic() >= deadline:
                    return
                time.sleep(0.1)
                continue
            # "removal already in progress" is as good as done
            if isinstance(exc, APIError) and "in progress" in str(exc):
                return
            attempt += 1
            time.sleep(0.2 * attempt)


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
    # and the password files such helpers mounted
    names += [f"password file {name}" for name in remove_secret_leftovers(directory)]
    return names


def remove_live() -> None:
    """Remove every helper this process is running now (an interrupted run calls it)."""
    with _live_lock:
        live = list(_live.items())
    for helper_id, client in live:
        _remove(client.api, helper_id)
