"""Running one hook step of any kind — bash, HTTP, TCP, exec, SQL — with what hooks are told:
the environment, the shared context, the run's state, and a time limit for every kind."""

from __future__ import annotations

import io
import json
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from kompose.docker import containers
from kompose.host import processes as execute
from kompose.hooks import context as hookcontext
from kompose.engines.postgres import sql as postgres
from kompose.hooks.kinds import sql as sqlhooks
from kompose.context import Context
from kompose.hooks.declarative import RUN_FIELDS, STACK_FIELDS, mask_url, render_body
from kompose.env import is_secret
from kompose.errors import HookError, KomposeError
from kompose.hooks.points import timeout as hook_timeout
from kompose.plan.steps import ExecHook, Hook, HttpHook, SqlHook, Step, TcpHook, step_label
from kompose.stacks import Stack, compose_file_of

_PSQL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


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

    def __init__(self, ctx: Context, scope: HookScope, detail: Callable[[str], None], sink: Sink):
        self.ctx = ctx
        self.scope = scope
        self.detail = detail
        self.sink = sink

    def run(self, step: Step, state: Mapping[str, str]) -> None:
        handler = {Hook: self._bash, HttpHook: self._http, TcpHook: self._tcp, ExecHook: self._exec,
                   SqlHook: self._sql}[type(step)]
        handler(step, state)

    # -- what hooks are told

    def _told(self, step: Step, state: Mapping[str, str], label: str) -> dict[str, str]:
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

    # -- the kinds

    def _bash(self, step: Hook, state: Mapping[str, str]) -> None:
        env = dict(self.scope.env)
        env.update(self.scope.context())
        env.update(step.env)
        env.update(self._told(step, state, step.function))
        self.detail(f"hook {step.function} {' '.join(step.args)}".rstrip())
        if self.scope.hooks_file is None:
            raise HookError(f"hook {step.function}: {self.scope.directory / 'hooks.sh'} is gone")
        limit = step.timeout if step.timeout is not None else hook_timeout(env, step.point)
        result = execute.run_hook(
            self.scope.hooks_file, step.function, step.args, env, self.scope.directory, limit, self.sink
        )
        if result.lingering:
            self.detail(
                f"hook {step.function} returned, but a background process it started still holds its output; "
                "kompose goes on and no longer shows its output"
            )

    def _http(self, step: HttpHook, state: Mapping[str, str]) -> None:
        from kompose.hooks import probes  # urllib costs start-up time only the runs with such hooks should pay

        what = f"http hook {step.key} ({step.method} {mask_url(step.url)})"
        self.detail(f"hook {step.key}: {step.method} {mask_url(step.url)}")
        body: bytes | None = None
        content_type = "application/json"
        if step.method == "POST":
            summary = self.summary(step, state)
            if step.body is None:
                body = json.dumps(summary).encode()
            else:
                flat = {k: " ".join(v) if isinstance(v, list) else str(v) for k, v in summary.items()}
                text = render_body(step.body, flat)
                try:
                    json.loads(text)
                except ValueError:
                    content_type = "text/plain; charset=utf-8"
                body = text.encode()
        result = probes.http_request(step.method, step.url, body, content_type, step.timeout, what)
        self.sink(f"{result.status} {result.reason}".rstrip())

    def _tcp(self, step: TcpHook, state: Mapping[str, str]) -> None:
        from kompose.hooks import probes

        self.detail(f"hook {step.key}: {step.host}:{step.port}")
        took = probes.tcp_open(step.host, step.port, step.timeout, f"tcp hook {step.key} ({step.host}:{step.port})")
        self.sink(f"open after {took:.1f} s")

    def _exec(self, step: ExecHook, state: Mapping[str, str]) -> None:
        if self.scope.run_wide:
            raise HookError(f"exec hook {step.key}: exec hooks belong to a stack")
        container = containers.service_container(self.ctx, self._stack(), self.scope.env, step.service)
        env = {
            "KOMPOSE_STACK": self.scope.name,
            "KOMPOSE_COMMAND": self.scope.env.get("KOMPOSE_COMMAND", ""),
            **self.scope.context(),
            **dict(step.env),
            **self._told(step, state, step.key),
        }
        env.pop("KOMPOSE_CONTEXT", None)  # a host path means nothing inside the container
        self.detail(f"hook {step.key}: in {container.name}: {' '.join(step.argv)}")
        result = self._container_exec(container.id, container.name, step.argv, env, None, step.timeout,
                                      f"exec hook {step.key}")
        self._print(result.stdout)
        if result.exit_code != 0:
            detail = _tail(result.stderr) or _tail(result.stdout)
            raise HookError(f"exec hook {step.key} failed with exit code {result.exit_code}"
                            + (f": {detail}" if detail else ""))

    def _sql(self, step: SqlHook, state: Mapping[str, str]) -> None:
        container = step.container or containers.resolve(self.ctx, self._stack(), self.scope.env)
        variables = [(k, v) for k, v in self.scope.context().items() if _PSQL_NAME.match(k) and not is_secret(k)]
        variables += [("run_id", self.scope.run_id), ("status", state.get("KOMPOSE_STATUS", "running"))]
        argv = list(step.argv)
        argv[-1:-1] = [f"--set={key}={value}" for key, value in variables]  # before --file=-
        batches = [step.files] if step.atomic else [(path,) for path in step.files]
        count = f"{len(step.files)} file{'s' if len(step.files) != 1 else ''}"
        how = "in one transaction" if step.atomic else "each on its own"
        self.detail(f"hook sql/{step.point}/ ({count}, {how}) in {step.database} ({container.name})")
        started = time.monotonic()
        for batch in batches:
            try:
                script = sqlhooks.script(batch)
            except OSError as exc:
                raise HookError(f"sql hook {batch[0]}: cannot read: {exc.strerror or exc}") from None
            what = f"sql hook sql/{step.point}/" + (batch[0].name if len(batch) == 1 else "")
            deadline_left = step.timeout - (time.monotonic() - started)
            if deadline_left <= 0:
                raise HookError(f"{what} timed out after {step.timeout:g} s")
            result = self._container_exec(container.id, container.name, tuple(argv), dict(step.env),
                                          script.text.encode(), deadline_left, what, step.timeout)
            self._print(result.stdout)
            if result.exit_code != 0:
                message = postgres.failure_message(what, result.exit_code, result.stderr)
                if step.atomic:
                    message += " (rolled back: nothing of this directory took effect)"
                raise HookError(script.locate(message))

    # -- helpers

    def _stack(self) -> Stack:
        directory = self.scope.directory
        return Stack(self.scope.name, directory, compose_file_of(directory) or directory / "compose.yaml")

    def _container_exec(self, container_id, container_name, argv, env, stdin: bytes | None, limit: float,
                        what: str, full_limit: float | None = None) -> execute.ExecResult:
        """container_exec with a time limit: on expiry the exec's process group is killed."""
        client = self.ctx.docker()
        started: list[str] = []
        outcome: list = []

        def work() -> None:
            try:
                outcome.append(execute.container_exec(
                    client, container_id, argv, env, stdin=io.BytesIO(stdin) if stdin is not None else None,
                    on_start=started.append,
                ))
            except BaseException as exc:  # handed to the caller's thread
                outcome.append(exc)

        worker = threading.Thread(target=work, daemon=True)
        worker.start()
        worker.join(limit)
        if worker.is_alive():
            stopped = bool(started) and execute.stop_exec(client, started[0], container_id)
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

    def _print(self, output: bytes) -> None:
        for line in output.decode("utf-8", "replace").splitlines():
            if line.strip():
                self.sink(line)


def _tail(data: bytes) -> str:
    lines = [line.strip() for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
    return " | ".join(lines[-3:])


def failed_state(step: Step | None, error: KomposeError | str) -> dict[str, str]:
    """The state hooks see after a failure."""
    return {
        "KOMPOSE_STATUS": "failed",
        "KOMPOSE_FAILED_STEP": step_label(step) if step is not None else "",
        "KOMPOSE_ERROR": error.message if isinstance(error, KomposeError) else str(error),
    }
