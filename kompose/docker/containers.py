"""Finding the container a stack's database tools run in (read-only questions to the engine)."""

from __future__ import annotations

import os
import re
from typing import Mapping

from kompose.context import Context
from kompose.docker import engine_api
from kompose.errors import DockerError
from kompose.plan.steps import Container
from kompose.stacks import Stack

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"


_NAME_LINE = re.compile(r"^name[ \t]*:[ \t]*(.*?)[ \t]*$", re.MULTILINE)
_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


def _interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}`` and ``$VAR`` in a value; ``$$`` is ``$``."""
    def value(match: re.Match) -> str:
        name = match.group(1) or match.group(4)
        op, default = match.group(2), match.group(3) or ""
        got = env.get(name)
        if op == ":-" and not got:
            return default
        if op == "-" and got is None:
            return default
        return got or ""

    return "$".join(_VARIABLE.sub(value, part) for part in text.split("$$"))


def compose_file_name(stack: Stack, env: Mapping[str, str]) -> str:
    """The top-level ``name:`` of the stack's compose file (interpolated from ``env``), or ""."""
    try:
        text = stack.compose_file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    match = _NAME_LINE.search(text)
    if not match:
        return ""
    raw = re.sub(r"[ \t]+#.*$", "", match.group(1)).strip()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        raw = raw[1:-1]
    return _interpolate(raw, env).strip()


def project_name(stack: Stack, env: Mapping[str, str] | None = None) -> str:
    """The compose project name the stack really runs under, as docker compose picks it:
    COMPOSE_PROJECT_NAME in the stack's environment, else the compose file's top-level
    ``name:``, else the one compose derives from the directory name."""
    env = env or {}
    given = (env.get("COMPOSE_PROJECT_NAME") or "").strip() or compose_file_name(stack, env)
    if given:
        return given
    return re.sub(r"^[^a-z0-9]+", "", re.sub(r"[^a-z0-9_-]", "", stack.name.lower()))


def _all_containers(ctx: Context) -> list:
    """Every container on the engine, inspected; one listing per run is enough (planning only reads)."""
    cache = getattr(ctx, "_container_cache", None)
    if cache is None:
        client = ctx.docker()
        cache = []
        # containers.list() inspects each listed container and fails as a whole when one of
        # them is removed meanwhile, which on a shared engine happens all the time
        for summary in client.api.containers(all=True):
            try:
                cache.append(client.containers.get(summary["Id"]))
            except Exception as exc:
                if not isinstance(exc, engine_api.errors()[1]):
                    raise
        ctx._container_cache = cache
    return cache


def _aliases(container) -> dict[str, set[str]]:
    networks = container.attrs.get("NetworkSettings", {}).get("Networks", {}) or {}
    return {name: set(info.get("Aliases") or []) for name, info in networks.items()}


def server_engine(container) -> str:
    """The database server a container runs, from its image name and environment (the official
    images' variables): "postgres", "mariadb", "mysql", or "" when neither says."""
    image = (container.attrs.get("Config", {}).get("Image") or "").lower()
    env = container.attrs.get("Config", {}).get("Env") or []
    if "postgres" in image or any(item.startswith(("PG_MAJOR=", "POSTGRES_")) for item in env):
        return "postgres"
    if "mariadb" in image or any(item.startswith(("MARIADB_", "MARIADB_MAJOR=")) for item in env):
        return "mariadb"
    if "mysql" in image or any(item.startswith("MYSQL_") for item in env):
        return "mysql"
    return ""


def _is_postgres(container) -> bool:
    return server_engine(container) == "postgres"


def _is_database(container) -> bool:
    return server_engine(container) != ""


def _ref(container, reason: str) -> Container:
    image = container.attrs.get("Config", {}).get("Image") or ""
    return Container(container.id, container.name, image, reason, image_id=container.attrs.get("Image") or "",
                     engine=server_engine(container), superuser=_local_superuser(container))


def _local_superuser(container) -> str:
    """The superuser the official postgres image (and kompose's) creates: POSTGRES_USER, else postgres.
    Only that one variable of the container's environment is read."""
    for item in container.attrs.get("Config", {}).get("Env") or []:
        if item.startswith("POSTGRES_USER="):
            return item.split("=", 1)[1] or "postgres"
    return "postgres"


def _require_running(container, what: str) -> None:
    state = container.attrs.get("State", {}).get("Status", "unknown")
    if state != "running":
        raise DockerError(f"database container {container.name} ({what}) is {state}, not running")


def _by_host(ctx: Context, host: str, own_project: str, network: str):
    """The container the name ``host`` reaches from the stack, as Docker's DNS would resolve it:
    a container of that name; else the stack's own service of that name; else the container
    with that alias on a network the stack uses (NETWORK_NAME, or its own containers' networks).

    Returns (container, reason) or (None, why not).
    """
    everything = _all_containers(ctx)
    named = [c for c in everything if c.name == host]
    if named:
        return named[0], f"DB_HOST={host} is the name of container {host}"
    own = [c for c in everything if c.labels.get(PROJECT_LABEL) == own_project]
    own_service = [c for c in own if c.labels.get(SERVICE_LABEL) == host]
    if own_service:
        own_service.sort(key=lambda c: c.status != "running")
        return own_service[0], f"DB_HOST={host} is service {host} of the stack's own compose project"
    networks = {network} if network else set()
    for container in own:
        networks |= set(_aliases(container))
    if not networks:
        return None, "no NETWORK_NAME and no running container of the stack to share a network with"
    matches = [
        c for c in everything
        if any(host in aliases for name, aliases in _aliases(c).items() if name in networks)
    ]
    running = [c for c in matches if c.status == "running"] or matches
    if len(running) > 1:
        names = ", ".join(sorted(c.name for c in running))
        raise DockerError(f"DB_HOST={host} is ambiguous on network {', '.join(sorted(networks))}: {names}; "
                          "set DB_CONTAINER to choose")
    if running:
        container = running[0]
        project = container.labels.get(PROJECT_LABEL)
        return container, (f"DB_HOST={host} is an alias of {container.name}"
                           + (f" (compose project {project})" if project else "")
                           + f" on network {', '.join(sorted(networks))}")
    return None, f"no container named {host} or with that alias on network {', '.join(sorted(networks))}"


def _is_address(host: str) -> bool:
    """An IP address, localhost or a dotted host name: not the name of a container or service."""
    import ipaddress

    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return host == "localhost" or "." in host


def resolve(ctx: Context, stack: Stack, env: Mapping[str, str]) -> Container:
    """The database container, first match wins: DB_CONTAINER; the container DB_HOST reaches
    (see _by_host); the stack's own project's postgres container; when DB_HOST is an address
    (a database outside Docker), a tools container to start for the run (``network`` = host:port,
    see run/tools.py).

    Raises DockerError saying what was tried when none fits, or when it is not running.
    """
    tried = []
    wanted = env.get("DB_CONTAINER", "")
    if wanted:
        try:
            container = ctx.docker().containers.get(wanted)
        except Exception as exc:
            if isinstance(exc, engine_api.errors()[1]):
                raise DockerError(f"DB_CONTAINER={wanted}: no such container") from None
            raise
        _require_running(container, f"DB_CONTAINER={wanted}")
        return _ref(container, f"DB_CONTAINER={wanted}")
    tried.append("DB_CONTAINER (not set)")

    host = env.get("DB_HOST", "")
    own_project = project_name(stack, env)
    if host and host not in ("localhost", "127.0.0.1", "::1"):
        container, reason = _by_host(ctx, host, own_project, env.get("NETWORK_NAME", ""))
        if container is not None:
            _require_running(container, reason)
            return _ref(container, reason)
        tried.append(f"DB_HOST={host} ({reason})")
    else:
        tried.append(f"DB_HOST={host} (a local address, not a container)" if host else "DB_HOST (not set)")

    own = [c for c in _all_containers(ctx) if c.labels.get(PROJECT_LABEL) == own_project and _is_database(c)]
    if own:
        # PostgreSQL first, as before MariaDB was known; then a running one
        own.sort(key=lambda c: (not _is_postgres(c), c.status != "running"))
        container = own[0]
        reason = f"{server_engine(container)} service {container.labels.get(SERVICE_LABEL)} of compose project {own_project}"
        _require_running(container, reason)
        return _ref(container, reason)
    tried.append(f"a postgres or mariadb/mysql container in compose project {own_project} (none)")
    if host and _is_address(host) and env.get("DB_ENGINE", "").strip().lower() in ("", "postgres", "postgresql"):
        # kompose.sh's layout of a database outside Docker: DB_HOST an address, DB_PORT a published port
        port = env.get("DB_PORT", "") or "5432"
        name = f"kompose-tools-{project_name(stack, env)}-{os.getpid()}"
        reason = (f"no container serves DB_HOST={host} ({'; '.join(tried[1:])}): a database outside Docker, reached "
                  f"over the network at {host}:{port} by a short-lived tools container of the server's major version")
        return Container(name, name, "", reason, network=f"{host}:{port}", engine="postgres")
    raise DockerError(f"no database container for stack {stack.name}; tried " + ", ".join(tried))


def service_container(ctx: Context, stack: Stack, env: Mapping[str, str], service: str) -> Container:
    """The container an exec hook runs in: ``service`` of the stack's compose project (a running one
    first), else the container named ``service``. Asked when the hook runs, not from the planning cache:
    the hook may follow an `up` that made it.

    Raises DockerError when there is none, or it is not running.
    """
    from docker.errors import NotFound

    project = project_name(stack, env)
    client = ctx.docker()
    found = client.containers.list(
        all=True, filters={"label": [f"{PROJECT_LABEL}={project}", f"{SERVICE_LABEL}={service}"]}
    )
    reason = f"service {service} of compose project {project}"
    if not found:
        try:
            found = [client.containers.get(service)]
            reason = f"container {service}"
        except NotFound:
            raise DockerError(
                f"no container for {service!r}: not a service of compose project {project}, nor a container name"
            ) from None
    found.sort(key=lambda c: c.status != "running")
    container = found[0]
    if container.status != "running":
        raise DockerError(f"container {container.name} ({reason}) is {container.status}, not running")
    return _ref(container, reason)
