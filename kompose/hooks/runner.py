"""Running one hook step of any kind — bash, HTTP, TCP, exec, SQL — with what hooks are told:
the environment, the shared context, the run's state, and a time limit for every kind."""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from kompose.context import Context
from kompose.errors import HookError, KomposeError, last_lines
from kompose.hooks import context as hookcontext
from kompose.hooks.declarative import RUN_FIELDS, STACK_FIELDS
from kompose.hooks.kinds import kind_of
from kompose.docker import exec as docker_exec
from kompose.plan.render import step_label
from kompose.plan.steps import Step
from kompose.stacks import Stack, compose_file_of



@dataclass
class HookScope:
    """Where hooks run and what they are told: one stack, or the root for the run-wide hooks."""

    name: str  # the stack; "" for the run-wide hooks
    directory: Path
    hooks_file: Path | None
    env: Mapping[str, str]  # the layered environment plus the plan's KOMPOSE_* variables
    run_id: str
    context_file: Path | None
    # context values of the run-wide hooks: every stack's hooks see them too
    inherited: Mapping[str, str] = field(default_factory=dict)

    def context(self) -> dict[str, str]:
        return {**self.inherited, **hookcontext.read(self.context_file)}

    @property
    def run_wide(self) -> bool:
        return not self.name


Sink = Callable[[str], None]


class HookRunner:
    """Runs hook steps for one scope; ``state`` (KOMPOSE_STATUS, KOMPOSE_FAILED_STEP, ...) says
    where the run stands. Every method raises HookError (or DockerError) when the hook fails."""

    def __init__(self, ctx: Context, scope: HookScope, detail: Callable[[str], None], sink: Sink,
                 err_sink: Sink | None = None):
        self.ctx = ctx
        self.scope = scope
        self.detail = detail
        self.sink = sink
        self.err_sink = err_sink or sink  # a hook's stderr (the console's stderr; cron mails it)

    def run(self, step: Step, state: Mapping[str, str]) -> None:
        kind_of(step).run(self, step, state)

    # -- what hooks are told

    def told(self, step: Step, state: Mapping[str, str], label: str) -> dict[str, str]:
        """KOMPOSE_* variables every kind of hook gets."""
        told = {
            "KOMPOSE_RUN_ID": self.scope.run_id,
            "KOMPOSE_HOOK": label,
            "KOMPOSE_HOOK_POINT": step.point,
            "KOMPOSE_STATUS": "running",
        }
        if self.scope.context_file:
            told["KOMPOSE_CONTEXT"] = str(self.scope.context_file)
        told.update(state)
        return told

    def summary(self, step: Step, state: Mapping[str, str]) -> dict:
        """The run summary an HTTP hook may send: JSON body, or {{placeholders}} of a template."""
        env = self.scope.env
        data: dict = {
            "run_id": self.scope.run_id,
            "command": env.get("KOMPOSE_COMMAND", ""),
            "hook": step.point,
            "status": state.get("KOMPOSE_STATUS", "running"),
            "failed_step": state.get("KOMPOSE_FAILED_STEP", ""),
            "error": state.get("KOMPOSE_ERROR", ""),
        }
        if self.scope.run_wide:
            for key in ("stacks", "succeeded", "failed", "skipped"):
                data[key] = state.get(f"KOMPOSE_{key.upper()}", env.get(f"KOMPOSE_{key.upper()}", "")).split()
        else:
            data["stack"] = self.scope.name
            data["dump_file"] = dict(getattr(step, "env", ()) or ()).get("KOMPOSE_DUMP_FILE") or env.get(
                "KOMPOSE_DUMP_FILE", ""
            )
        fields = RUN_FIELDS if self.scope.run_wide else STACK_FIELDS
        return {key: data.get(key, "") for key in fields}

    # -- helpers

    def stack(self) -> Stack:
        directory = self.scope.directory
        return Stack(self.scope.name, directory, compose_file_of(directory) or directory / "compose.yaml")

    def container_exec(self, container_id, container_name, argv, env, stdin: bytes | None, limit: float,
                        what: str, full_limit: float | None = None) -> docker_exec.ExecResult:
        """container_exec with a time limit: on expiry the exec's process group is killed."""
        client = self.ctx.docker()
        started: list[str] = []
        outcome: list = []

        def work() -> None:
            try:
                outcome.append(docker_exec.container_exec(
                    client, container_id, argv, env, stdin=io.BytesIO(stdin) if stdin is not None else None,
                    on_start=started.append,
                ))
            except BaseException as exc:  # handed to the caller's thread
                outcome.append(exc)

        worker = threading.Thread(target=work, daemon=True)
        worker.start()
        worker.join(limit)
        if worker.is_alive():
            stopped = bool(started) and docker_exec.stop_exec(client, started[0], container_id)
            worker.join(5.0)
            shown = full_limit if full_limit is not None else limit
            if stopped:
                raise HookError(f"{what} timed out after {shown:g} s; its process group in {container_name} was killed")
            raise HookError(f"{what} timed out after {shown:g} s; kompose could not stop it in {container_name} "
                            "(it may still be running there)")
        result = outcome[0]
        if isinstance(result, BaseException):
            raise result
        return result

    @staticmethod
    def tail(data: bytes) -> str:
        return _tail(data)

    def print_output(self, output: bytes) -> None:
        for line in output.decode("utf-8", "replace").splitlines():
            if line.strip():
                self.sink(line)


def _tail(data: bytes) -> str:
    return last_lines(data)


def failed_state(step: Step | None, error: KomposeError | str) -> dict[str, str]:
    """The state hooks see after a failure."""
    return {
        "KOMPOSE_STATUS": "failed",
        "KOMPOSE_FAILED_STEP": step_label(step) if step is not None else "",
        "KOMPOSE_ERROR": error.message if isinstance(error, KomposeError) else str(error),
    }
