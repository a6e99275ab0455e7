"""The Context passed down through a run: root, options, console, layered env, a lazy Docker client."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from kompose import env as envmod
from kompose.console import Console
from kompose.errors import DockerError
from kompose.stacks import Stack

if TYPE_CHECKING:  # the docker SDK costs ~0.1 s to import: only the paths that talk to the engine pay it
    import docker


@dataclass
class Options:
    root: Path
    dry_run: bool = False
    json: bool = False
    debug: bool = False
    lock_timeout: float = 0.0
    jobs: int = 1  # stacks run at once (--jobs)
    verbose: bool = False  # dry runs: every step in full (SQL bodies) (--verbose)
    overrides: dict[str, str] = field(default_factory=dict)


class Context:
    def __init__(self, options: Options, console: Console, process_env: Mapping[str, str] | None = None,
                 find_container=None, local_client=None):
        self.options = options
        # makes the client of a local engine (a unix:// URL -> client); the CLI gives kompose's own
        # small one (docker/engine_api.LiteClient, no SDK import); None: the docker SDK's
        self.local_client = local_client
        self.console = console
        # how actions find the container a stack's database tools run in: (ctx, stack, env) -> Container;
        # None: ask the engine (docker/containers.resolve). Unit tests of plans inject one (no Docker)
        self.find_container = find_container
        self.process_env = dict(os.environ if process_env is None else process_env)
        self._root_env: dict[str, str] | None = None
        self._env_files: dict[Path, dict[str, str]] = {}
        self._docker: "docker.DockerClient | None" = None
        self._docker_lock = threading.Lock()  # stacks running side by side (--jobs) share one client

    @property
    def root(self) -> Path:
        return self.options.root

    @property
    def dry_run(self) -> bool:
        return self.options.dry_run

    def root_env(self) -> dict[str, str]:
        """Process environment < root .env (parsed once)."""
        if self._root_env is None:
            self._root_env = envmod.layer(self.process_env, [self.root / ".env"], {})
        return self._root_env

    def env_file_values(self, path: Path) -> dict[str, str]:
        """The keys one .env file under the root sets, ``${VAR}`` resolved against the root env;
        {} when there is none. Parsed once per run: planning asks for it more than once per stack."""
        if path not in self._env_files:
            self._env_files[path] = envmod.read_env_file(path, self.root_env()) if path.is_file() else {}
            for key in self._env_files[path]:
                meant = envmod.misspelt_setting(key)
                if meant:  # a typo would silently leave a setting at its default
                    self.console.warn(f"{path}: {key} is not a kompose setting; did you mean {meant}?")
        return dict(self._env_files[path])

    def stack_env(self, stack: Stack) -> dict[str, str]:
        """The stack's layered environment: process < root .env < stack .env < -e/--network."""
        env = self.root_env().copy()
        env.update(self.env_file_values(stack.env_file))
        env.update(self.options.overrides)
        self.console.add_secrets(envmod.secret_values(env))
        return env

    def docker(self) -> "docker.DockerClient":
        """A Docker client for the engine in DOCKER_HOST (or the local socket), made on first use."""
        with self._docker_lock:
            return self._make_docker()

    def _make_docker(self) -> "docker.DockerClient":
        if self._docker is None:
            url = self.process_env.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
            try:
                if url.startswith("unix://") and self.local_client is not None:
                    client = self.local_client(url)
                else:
                    import docker

                    client = docker.DockerClient(base_url=url, timeout=60)
                client.ping()
            except Exception as exc:
                from docker.errors import DockerException

                if not isinstance(exc, DockerException):
                    raise
                raise DockerError(f"cannot reach the Docker engine at {url}: {engine_problem(exc)}") from None
            self._docker = client
        return self._docker


def engine_problem(exc: BaseException) -> str:
    """What went wrong talking to the engine, in words (not "('Connection aborted.', FileNotFoundError(2, …))")."""
    found: list[BaseException] = []
    todo = [exc]
    while todo and len(found) < 50:  # the exception, its causes and the exceptions in their args
        item = todo.pop(0)
        found.append(item)
        todo += [a for a in getattr(item, "args", ()) if isinstance(a, BaseException)]
        todo += [c for c in (item.__cause__, item.__context__) if c is not None and c not in found]
    text = " ".join(str(e) for e in found)
    for kind, words in ((FileNotFoundError, "no such socket (is the engine running? DOCKER_HOST picks another)"),
                        (PermissionError, "permission denied on the socket (the docker group, or root)"),
                        (ConnectionRefusedError, "connection refused (is the engine running?)")):
        if any(type(e) is kind for e in found) or kind.__name__ in text:
            return words
    if "NewConnectionError" in text or "Max retries exceeded" in text:
        return "no engine answers there (is it running? is DOCKER_HOST right?)"
    return _short(exc)


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]
