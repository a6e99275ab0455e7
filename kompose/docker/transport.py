"""How a dump travels from the database to the host: which transport, and why.

- exec: pg_dump runs inside the database container; its output crosses the exec attach
  stream (~85 MB/s on dockerd 20.10: the stream, not pg_dump, is the limit).
- direct: pg_dump runs in a short-lived helper container made from the database
  container's image, in its network namespace, writing into the bind-mounted dump
  directory (~2.5x faster). Possible only when the engine can bind-mount the paths kompose
  sees: a local engine (unix socket) whose process shares kompose's filesystem view (not
  the case when kompose runs in a container with the engine's socket mounted into it).
"""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from kompose.errors import UsageError

TRANSPORTS = ("auto", "exec", "direct")
# below this, auto keeps the exec stream: the helper container's start (~0.3 s) costs more than
# its faster path saves (exec ~85 MB/s, direct ~270 MB/s on this machine kind: break-even ~37 MB)
SMALL_DUMP = 32 << 20
DEFAULT_SOCKET = "unix:///var/run/docker.sock"


@dataclass(frozen=True)
class Choice:
    name: str  # "exec" or "direct"
    reason: str
    forced: bool = False  # by --transport


def engine_is_local(docker_host: str) -> tuple[bool, str]:
    """(True when DOCKER_HOST names a local unix socket, a phrase saying which engine)."""
    if not docker_host:
        return True, f"local engine ({DEFAULT_SOCKET})"
    if docker_host.startswith("unix://"):
        return True, f"local engine ({docker_host})"
    return False, f"DOCKER_HOST={docker_host} is a remote engine"


def socket_path(docker_host: str) -> str:
    return (docker_host or DEFAULT_SOCKET).removeprefix("unix://")


def engine_sees_our_files(path: str) -> tuple[bool, str]:
    """Whether the engine serving the unix socket ``path`` shares kompose's view of the filesystem.

    The socket's peer credentials name the engine's pid as seen from here: 0 when the engine
    lives outside kompose's pid namespace (kompose in a container, the socket mounted in).
    A visible engine in another mount namespace (rootless, or kompose in a --pid=host
    container) does not share it either. Returns (answer, the reason in a phrase).
    """
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2)
            sock.connect(path)
            pid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))[0]
    except OSError as exc:
        return False, f"cannot connect to {path} ({exc.strerror or exc})"
    if pid <= 0:
        return False, "the engine runs outside kompose's process namespace (kompose in a container?)"
    try:
        if os.readlink(f"/proc/{pid}/ns/mnt") != os.readlink("/proc/self/ns/mnt"):
            return False, "the engine runs in another mount namespace"
    except OSError:
        pass  # not ours to inspect (another user's engine): the pid alone says it is on this host
    return True, "it shares this host's files"


def choose(requested: str, process_env: Mapping[str, str], directory: Path, sees_our_files=engine_sees_our_files,
           previous_size: int | None = None) -> Choice:
    """The transport for an export into ``directory``.

    ``requested`` is auto, exec or direct (--transport). auto picks direct when the engine
    can write into ``directory`` and exec otherwise, or when the stack's previous dump
    (``previous_size`` bytes) was smaller than SMALL_DUMP. direct is refused only for a remote
    engine: where locality cannot be proven, the user's word counts (and the run checks
    that the file really appeared). ``sees_our_files(socket_path)`` is the probe (a
    parameter for tests). Raises UsageError for an unknown name and for direct on a
    remote engine.
    """
    if requested not in TRANSPORTS:
        raise UsageError(f"--transport {requested!r}: choose one of {', '.join(TRANSPORTS)}")
    if requested == "exec":
        return Choice("exec", "forced by --transport exec", forced=True)
    docker_host = process_env.get("DOCKER_HOST", "")
    local, engine = engine_is_local(docker_host)
    if not local:
        if requested == "direct":
            raise UsageError(f"--transport direct needs a local engine: {engine}; use --transport exec")
        return Choice("exec", f"{engine}: pg_dump streams through docker exec")
    if requested == "direct":
        return Choice(
            "direct", "forced by --transport direct: pg_dump runs in a helper container and writes the file itself",
            forced=True,
        )
    if previous_size is not None and previous_size < SMALL_DUMP:
        return Choice("exec", f"the last dump was {previous_size / 1e6:.1f} MB: streaming it costs less than "
                              "starting a helper container")
    shared, why = sees_our_files(socket_path(docker_host))
    if not shared:
        return Choice("exec", f"{why}: pg_dump streams through docker exec")
    return Choice("direct", f"{engine}, {why}: pg_dump runs in a helper container and writes the file itself")


def helper_user(rootless: bool, uid: int | None = None, gid: int | None = None) -> str:
    """The uid:gid a helper runs as so the dump belongs to whoever runs kompose.

    A rootless engine maps the container's root to the user who runs the engine (kompose's
    user), so there the helper runs as 0:0.
    """
    if rootless:
        return "0:0"
    uid = os.getuid() if uid is None else uid
    gid = os.getgid() if gid is None else gid
    return f"{uid}:{gid}"


def engine_is_rootless(client) -> bool:
    """Ask the engine (read-only) whether it runs rootless."""
    options = client.info().get("SecurityOptions") or []
    return any("name=rootless" in option for option in options)
