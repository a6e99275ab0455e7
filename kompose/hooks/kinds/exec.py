"""exec hooks: ``KOMPOSE_HOOK_<POINT>_EXEC=<service-or-container> <command> [<arg>...]`` — a command
run without a shell in a container of the stack, found when the hook runs."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Mapping

from kompose.errors import ConfigError, HookError
from kompose.plan.steps import HookStep


KIND = "exec"
_SERVICE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class ExecHook(HookStep):
    """A declarative command run in a container of the stack (its compose service, or a container
    of that name), found when the hook runs."""

    kind = KIND
    point: str
    key: str
    service: str
    argv: tuple[str, ...]
    timeout: float
    env: tuple[tuple[str, str], ...] = ()

    def what(self) -> str:
        return f"exec in {self.service}: " + " ".join(shlex.quote(word) for word in self.argv)

    def label(self) -> str:
        return self.key


STEP = ExecHook


def parse(key: str, value: str, fields: tuple[str, ...]) -> dict:
    """The definition's fields (for Declared), or ConfigError naming the key."""
    try:
        words = shlex.split(value)
    except ValueError as exc:
        raise ConfigError(f"{key}: cannot split {value!r} into words: {exc}") from None
    if len(words) < 2:
        raise ConfigError(f"{key}: expected '<service> <command> [<arg>...]', got {value!r}")
    if not _SERVICE.match(words[0]):
        raise ConfigError(f"{key}: {words[0]!r} is not a service or container name")
    return {"service": words[0], "argv": tuple(words[1:])}


def step(point: str, item, timeout: float, extra: tuple[tuple[str, str], ...]) -> ExecHook:
    return ExecHook(point, item.key, item.service, item.argv, timeout, extra)


def run(runner, step: ExecHook, state: Mapping[str, str]) -> None:
    from kompose.docker import containers

    scope = runner.scope
    if scope.run_wide:
        raise HookError(f"exec hook {step.key}: exec hooks belong to a stack")
    container = containers.service_container(runner.ctx, runner.stack(), scope.env, step.service)
    env = {
        "KOMPOSE_STACK": scope.name,
        "KOMPOSE_COMMAND": scope.env.get("KOMPOSE_COMMAND", ""),
        **scope.context(),
        **dict(step.env),
        **runner.told(step, state, step.key),
    }
    env.pop("KOMPOSE_CONTEXT", None)  # a host path means nothing inside the container
    runner.detail(f"hook {step.key}: in {container.name}: {' '.join(step.argv)}")
    result = runner.container_exec(container.id, container.name, step.argv, env, None, step.timeout,
                                   f"exec hook {step.key}")
    runner.print_output(result.stdout)
    if result.exit_code != 0:
        detail = runner.tail(result.stderr) or runner.tail(result.stdout)
        raise HookError(f"exec hook {step.key} failed with exit code {result.exit_code}"
                        + (f": {detail}" if detail else ""))
