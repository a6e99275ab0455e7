"""Finding the container a stack's database tools run in (read-only questions to the engine)."""

from __future__ import annotations

import re
from typing import Mapping

from kompose.context import Context
from kompose.errors import DockerError
from kompose.plan import Container
from kompose.stacks import Stack

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"


def project_name(stack: Stack) -> str:
    """The compose project name docker compose derives from a directory name."""
    return re.sub(r"^[^a-z0-9]+", "", re.sub(r"[^a-z0-9_-]", "", stack.name.lower()))


def _all_containers(ctx: Context) -> list:
    """Every container on the engine, inspected; one listing per run is enough (planning only reads)."""
    from docker.errors import NotFound

    cache = getattr(ctx, "_container_cache", None)
    if cache is None:
        client = ctx.docker()
        cache = []
        # containers.list() inspects each listed container and fails as a whole when one of
        # them is removed meanwhile, which on a shared engine happens all the time
        for summary in client.api.containers(all=True):
            try:
                cache.append(client.containers.get(summary["Id"]))
            except NotFound:
                continue
        ctx._container_cache = cache
    return cache


def _aliases(container) -> dict[str, set[str]]:
    networks = container.attrs.get("NetworkSettings", {}).get("Networks", {}) or {}
    return {name: set(info.get("Aliases") or []) for name, info in networks.items()}


def _is_postgres(container) -> bool:
    image = (container.attrs.get("Config", {}).get("Image") or "").lower()
    env = container.attrs.get("Config", {}).get("Env") or []
    return "postgres" in image or any(item.startswith(("PG_MAJOR=", "POSTGRES_")) for item in env)


def _ref(container, reason: str) -> Container:
    image = container.attrs.get("Config", {}).get("Image") or ""
    return Container(container.id, container.name, image, reason)


def _require_running(container, what: str) -> None:
    state = container.attrs.get("State", {}).get("Status", "unknown")
    if state != "running":
        raise DockerError(f"database container {container.name} ({what}) is {state}, not running")


def resolve(ctx: Context, stack: Stack, env: Mapping[str, str]) -> Container:
    """The database container, first match wins: DB_CONTAINER; a container known as DB_HOST
    (name, compose service or network alias; on NETWORK_NAME or the stack's own project
    when several are); the stack's own project's postgres container.

    Raises DockerError saying what was tried when none fits, or when it is not running.
    """
    from docker.errors import NotFound

    tried = []
    wanted = env.get("DB_CONTAINER", "")
    if wanted:
        try:
            container = ctx.docker().containers.get(wanted)
        except NotFound:
            raise DockerError(f"DB_CONTAINER={wanted}: no such container") from None
        _require_running(container, f"DB_CONTAINER={wanted}")
        return _ref(container, f"DB_CONTAINER={wanted}")
    tried.append("DB_CONTAINER (not set)")

    host = env.get("DB_HOST", "")
    own_project = project_name(stack)
    if host and host not in ("localhost", "127.0.0.1", "::1"):
        matches = [
            c for c in _all_containers(ctx)
            if c.name == host
            or c.labels.get(SERVICE_LABEL) == host
            or any(host in aliases for aliases in _aliases(c).values())
        ]
        running = [c for c in matches if c.status == "running"] or matches
        if len(running) > 1:
            network = env.get("NETWORK_NAME", "")
            narrowed = [c for c in running if c.labels.get(PROJECT_LABEL) == own_project]
            if not narrowed and network:
                narrowed = [c for c in running if host in _aliases(c).get(network, set())]
            if len(narrowed) == 1:
                running = narrowed
        if len(running) == 1:
            container = running[0]
            where = "its own project" if container.labels.get(PROJECT_LABEL) == own_project else (
                f"project {container.labels.get(PROJECT_LABEL)}" if container.labels.get(PROJECT_LABEL) else "no project"
            )
            reason = f"DB_HOST={host} matches container {container.name} ({where})"
            _require_running(container, reason)
            return _ref(container, reason)
        if len(running) > 1:
            names = ", ".join(sorted(c.name for c in running))
            raise DockerError(f"DB_HOST={host} is ambiguous: {names}; set DB_CONTAINER to choose")
        tried.append(f"DB_HOST={host} (no container by that name, service or alias)")
    else:
        tried.append("DB_HOST (not set or local)")

    own = [c for c in _all_containers(ctx) if c.labels.get(PROJECT_LABEL) == own_project and _is_postgres(c)]
    if own:
        own.sort(key=lambda c: c.status != "running")
        container = own[0]
        reason = f"postgres service {container.labels.get(SERVICE_LABEL)} of compose project {own_project}"
        _require_running(container, reason)
        return _ref(container, reason)
    tried.append(f"a postgres container in compose project {own_project} (none)")
    raise DockerError(f"no database container for stack {stack.name}; tried " + ", ".join(tried))
