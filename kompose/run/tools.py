"""A database outside Docker (``DB_HOST`` an address, ``DB_PORT`` a published port, no container
serving it): the tools run in a short-lived container of the server's own major version, on the
host's network, connecting over the network (docker/containers.resolve chose this path and named
the container; its Container has ``network`` = "host:port").

Step kinds of their own (StartTools, StopTools: dataclasses, renderers, handlers, STEPS) and
``wrap``, which puts them around a stack plan whose steps use such a container. StartTools asks
the server its version with the first local image of the tools image template, then runs the
container from the image of that major (``KOMPOSE_TOOLS_IMAGE``, default
``kompose/postgres:{major}``; never pulled). The password travels only in exec environments.
One left by a killed kompose is removed by the next StartTools of that stack.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

from kompose.docker import exec as docker_exec
from kompose.errors import DockerError
from kompose.plan.model import StackPlan
from kompose.plan.render import describe
from kompose.plan.steps import Container

TOOLS_LABEL = "io.kompose.tools"
DIRECTORY_LABEL = "io.kompose.tools.directory"
DEFAULT_IMAGE = "kompose/postgres:{major}"
PROBE_MAJORS = (17, 16, 15, 14, 13, 18, 12)


@dataclass(frozen=True)
class StartTools:
    """Start ``container`` (named at planning) from the tools image of the server's major version."""

    container: Container
    directory: Path
    template: str
    argv: tuple[str, ...]  # psql asking the version (connects to container.network)
    env: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class StopTools:
    container: Container


@describe.register
def _describe_start(step: StartTools) -> tuple[str, str]:
    return "tools", (f"start {step.container.name} from {step.template} of the server's major version (asked of "
                     f"the server at {step.container.network}), on the host's network; removed at the end")


@describe.register
def _describe_stop(step: StopTools) -> tuple[str, str]:
    return "tools", f"remove {step.container.name}"


def _local_images(client, template: str) -> list[tuple[int, str]]:
    from docker.errors import ImageNotFound

    found = []
    for major in PROBE_MAJORS:
        name = template.format(major=major)
        try:
            client.images.get(name)
        except ImageNotFound:
            continue
        found.append((major, name))
    return found


def _start(client, name: str, image: str, directory: Path):
    from docker.errors import APIError

    try:
        return client.containers.run(
            image, entrypoint=["sleep", "infinity"], name=name, detach=True, network_mode="host",
            labels={TOOLS_LABEL: "1", DIRECTORY_LABEL: str(directory)}, auto_remove=False,
        )
    except APIError as exc:
        raise DockerError(f"cannot start the tools container {name} from {image}: {exc.explanation or exc}") from None


def _remove(client, name: str) -> None:
    from docker.errors import APIError, NotFound

    try:
        client.api.remove_container(name, force=True)
    except NotFound:
        pass
    except APIError as exc:
        if "already in progress" not in str(exc):
            raise DockerError(f"cannot remove the tools container {name}: {exc.explanation or exc}") from None


def _major(client, name: str, step: StartTools) -> int:
    result = docker_exec.container_exec(client, name, step.argv, dict(step.env),
                                        stdin=io.BytesIO(b"SHOW server_version_num;\n"))
    text = result.stdout.decode("utf-8", "replace").strip()
    if result.exit_code != 0 or not text.isdigit():
        detail = result.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no answer"]
        raise DockerError(f"the database at {step.container.network} did not answer the tools container: {detail[0]}")
    number = int(text)
    return number // 10000 if number >= 100000 else number // 100


def run_start(run, step: StartTools) -> None:
    client = run.ctx.docker()
    for summary in client.api.containers(all=True, filters={"label": f"{DIRECTORY_LABEL}={step.directory}"}):
        _remove(client, summary["Id"])
        run.console.detail(f"removed tools container {summary['Names'][0].lstrip('/')} (left by an interrupted run)",
                           "yellow")
    images = _local_images(client, step.template)
    if not images:
        raise DockerError(f"no local image {step.template.format(major='N')} for the tools: build or pull one for the "
                          "server's major version, or set KOMPOSE_TOOLS_IMAGE (a template with {major})")
    name = step.container.id
    probe_major, image = images[0]
    _start(client, name, image, step.directory)
    major = _major(client, name, step)
    if major != probe_major:
        wanted = step.template.format(major=major)
        if not any(m == major for m, _ in images):
            _remove(client, name)
            raise DockerError(f"the server at {step.container.network} is PostgreSQL {major}: no local image {wanted} "
                              "for its tools (build or pull it, or set KOMPOSE_TOOLS_IMAGE)")
        _remove(client, name)
        _start(client, name, wanted, step.directory)
        image = wanted
    run.console.detail(f"tools container {name} ({image}) for PostgreSQL {major} at {step.container.network}", "blue")


def run_stop(run, step: StopTools) -> None:
    _remove(run.ctx.docker(), step.container.id)


def _tools_container(stack_plan: StackPlan) -> Container | None:
    for step in (*stack_plan.steps, *stack_plan.on_failure):
        container = getattr(step, "container", None)
        if isinstance(container, Container) and container.network:
            return container
    return None


def wrap(stack_plan: StackPlan) -> None:
    """Start the tools container before the steps that use it and remove it after them (and after
    a failure's clean-up); nothing when the plan's tools run in a database container."""
    container = _tools_container(stack_plan)
    if container is None:
        return
    # the version is asked with the plan's own psql (its connection, its environment)
    script = next((step for step in (*stack_plan.steps, *stack_plan.on_failure)
                   if getattr(step, "container", None) == container and getattr(step, "argv", ("",))[0] == "psql"
                   and "--file=-" in step.argv), None)
    if script is None:
        raise DockerError(f"{stack_plan.command} of {stack_plan.stack}: no psql step to ask the server its version")
    psql_argv, env = script.argv, script.env
    template = stack_plan.env.get("KOMPOSE_TOOLS_IMAGE", "") or os.environ.get("KOMPOSE_TOOLS_IMAGE", "") \
        or DEFAULT_IMAGE
    stack_plan.steps.insert(0, StartTools(container, stack_plan.directory, template, psql_argv, env))
    stack_plan.steps.append(StopTools(container))
    stack_plan.on_failure.append(StopTools(container))


STEPS = {StartTools: run_start, StopTools: run_stop}
