"""Executing a Plan: failure semantics, per-stack outcomes, the summary and the exit code."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from kompose import dumps, execute, postgres
from kompose.console import Rate, human_size
from kompose.context import Context
from kompose.errors import DatabaseError, DockerError, DumpError, ExitCode, KomposeError, LockedError
from kompose.hooks import DEFAULT_HOOK_TIMEOUT, hook_timeout  # noqa: F401 (kept importable from here)
from kompose.locks import stack_lock
from kompose.plan import (
    CheckDump, Compose, Exec, Hook, Network, Note, Plan, Remove, RemoveStale, Rename, Sql, StackPlan, Step, describe,
)



@dataclass
class Outcome:
    stack: str
    status: str  # ok | failed | skipped
    error: str | None = None
    duration: float = 0.0
    file: str | None = None
    bytes: int | None = None
    notes: list[str] = field(default_factory=list)


def exit_code(outcomes: list[Outcome]) -> ExitCode:
    if any(o.status == "failed" for o in outcomes):
        return ExitCode.FAILED
    if any(o.status == "skipped" for o in outcomes):
        return ExitCode.LOCKED
    return ExitCode.OK


def summary_line(outcomes: list[Outcome]) -> str:
    ok = sum(o.status == "ok" for o in outcomes)
    failed = sum(o.status == "failed" for o in outcomes)
    skipped = sum(o.status == "skipped" for o in outcomes)
    text = f"{ok} succeeded, {failed} failed"
    if skipped:
        text += f", {skipped} skipped"
    return text + f" of {len(outcomes)} stack{'s' if len(outcomes) != 1 else ''}"


class StackRun:
    """Runs one stack's steps in order; on the first failure runs its on_failure steps."""

    def __init__(self, ctx: Context, stack_plan: StackPlan):
        self.ctx = ctx
        self.plan = stack_plan
        self.console = ctx.console
        self.outcome = Outcome(stack_plan.stack, "ok")

    def run(self) -> Outcome:
        if not self.plan.lock:
            return self._run_steps()
        try:
            with stack_lock(self.plan.directory, self.ctx.options.lock_timeout):
                return self._run_steps()
        except LockedError as exc:
            self.outcome.status = "skipped"
            self.outcome.error = exc.message
            self.console.detail(f"skipped: {exc.message}", "yellow")
            return self.outcome
        except KomposeError as exc:  # the lock could not be taken (the steps catch their own errors)
            self.outcome.status = "failed"
            self.outcome.error = exc.message
            self.console.detail(f"✗ {exc.message}", "red")
            return self.outcome

    def _run_steps(self) -> Outcome:
        started = time.monotonic()
        step: Step | None = None
        try:
            for step in self.plan.steps:
                self.run_step(step)
        except KomposeError as exc:
            self.outcome.status = "failed"
            self.outcome.error = exc.message
            self.console.detail(f"✗ {exc.message}", "red")
            self._clean_up()
        except KeyboardInterrupt:
            # Ctrl-C or SIGTERM: clean up as after a failure (no .partial, no temporary
            # database left), then let the interrupt end the run
            self.console.detail("✗ interrupted; cleaning up", "red")
            self._clean_up()
            raise
        self.outcome.duration = time.monotonic() - started
        if self.outcome.status == "ok":
            done = f"✓ done in {self.outcome.duration:.1f} s"
            if self.outcome.file:
                done += f": {self.outcome.file} ({human_size(self.outcome.bytes or 0)})"
            self.console.detail(done, "green")
        return self.outcome

    def _clean_up(self) -> None:
        for cleanup in self.plan.on_failure:
            try:
                self.run_step(cleanup)
            except KomposeError as cleanup_exc:
                # a clean-up failure is worth telling but never hides the original error
                self.console.detail(f"clean-up step failed too: {cleanup_exc.message}", "yellow")

    # -- steps

    def run_step(self, step: Step) -> None:
        handler = getattr(self, f"_run_{type(step).__name__.lower()}")
        try:
            handler(step)
        except OSError as exc:
            # a full disk, a vanished directory: the stack fails with one line, never a traceback
            kind, text = describe(step)
            raise KomposeError(f"{kind} step failed: {exc.strerror or exc} ({text.splitlines()[0]})") from None

    def _run_note(self, step: Note) -> None:
        self.console.detail(step.text, "dim")

    def _run_hook(self, step: Hook) -> None:
        env = dict(self.plan.env)
        env.update(step.env)
        env["KOMPOSE_HOOK"] = step.function
        self.console.detail(f"hook {step.function} {' '.join(step.args)}".rstrip(), "blue")
        result = execute.run_hook(
            self.plan.hooks_file,
            step.function,
            step.args,
            env,
            self.plan.directory,
            hook_timeout(env),
            lambda line: self.console.stream_line("", line),
        )
        if result.lingering:
            self.console.detail(
                f"hook {step.function} returned, but a background process it started still holds its output; "
                "kompose stopped reading it",
                "yellow",
            )

    def _run_compose(self, step: Compose) -> None:
        argv = [*execute.compose_command(), *step.argv[2:]]
        self.console.detail("$ " + " ".join(step.argv), "blue")
        result = execute.run_streamed(
            argv, self.plan.directory, self.plan.env, lambda line: self.console.stream_line("", line),
            what="docker compose",
        )
        if result.exit_code != 0:
            raise KomposeError(f"docker compose {step.argv[2] if len(step.argv) > 2 else ''} failed with exit code {result.exit_code}")

    def _run_network(self, step: Network) -> None:
        from docker.errors import APIError

        client = self.ctx.docker()
        try:
            if not any(n.name == step.name for n in client.networks.list(names=[step.name])):
                client.networks.create(step.name, driver="bridge")
                self.console.detail(f"created network {step.name}", "blue")
        except APIError as exc:
            # two stacks starting at once may both try: the loser finds it made
            if not any(n.name == step.name for n in client.networks.list(names=[step.name])):
                raise KomposeError(f"cannot create network {step.name}: {exc.explanation or exc}") from None

    def _run_exec(self, step: Exec) -> None:
        self.console.detail(step.what or describe(step)[1], "blue")
        rate = Rate()

        def progress(count: int) -> None:
            if rate.add(count):
                self.console.progress(f"{step.what}: {rate.text()}")

        try:
            stdin = open(step.stdin_file, "rb") if step.stdin_file else None
        except OSError as exc:
            raise DumpError(f"cannot read {step.stdin_file}: {exc.strerror}") from None
        try:
            # unbuffered: a full disk fails the write that hit it, not a later flush or close
            stdout = open(step.stdout_file, "wb", buffering=0) if step.stdout_file else None
        except OSError as exc:
            if stdin:
                stdin.close()
            raise DumpError(f"cannot write {step.stdout_file}: {exc.strerror}") from None
        started = time.time()
        try:
            result = execute.container_exec(
                self.ctx.docker(), step.container.id, step.argv, dict(step.env), stdin=stdin, stdout=stdout,
                on_progress=progress,
            )
        except DockerError:
            self._check_container(step.container, started, step.what or step.argv[0])
            raise
        finally:
            for handle in (stdin, stdout):
                if handle:
                    handle.close()
        if result.exit_code != 0:
            self._check_container(step.container, started, step.what or step.argv[0], result)
            raise DatabaseError(postgres.failure_message(step.argv[0], result.exit_code, result.stderr))

    def _run_sql(self, step: Sql) -> None:
        if not step.optional:
            return self._run_script(step)
        try:
            self._run_script(step)
        except KomposeError as exc:
            self.console.detail(f"could not {step.what}: {exc.message}; going on", "yellow")

    def _run_script(self, step: Sql) -> None:
        import io

        self.console.detail(step.what, "blue")
        started = time.time()
        try:
            result = execute.container_exec(
                self.ctx.docker(), step.container.id, step.argv, dict(step.env),
                stdin=io.BytesIO(step.script.encode()),
            )
        except DockerError:
            self._check_container(step.container, started, step.what)
            raise
        if result.exit_code != 0:
            self._check_container(step.container, started, step.what, result)
            raise DatabaseError(postgres.failure_message(f"psql ({step.what})", result.exit_code, result.stderr))
        for line in result.stdout.decode("utf-8", "replace").splitlines():
            if line.strip():
                self.console.stream_line("", line)

    def _check_container(self, container, started: float, what: str, result=None) -> None:
        """Raise DockerError naming the container when it stopped, vanished or restarted during ``what``.

        A tool killed by a signal, or one that lost its server, waits a moment for the
        engine to catch up: the tools die before the container is marked stopped.
        """
        settle = 0.0
        if result is None or result.exit_code >= 128 or postgres.lost_connection(result.stderr):
            settle = 3.0
        trouble = execute.container_trouble(self.ctx.docker(), container.id, started, settle)
        if trouble:
            raise DockerError(f"the database container {container.name} {trouble} during {what}")

    def _run_checkdump(self, step: CheckDump) -> None:
        dumps.check_complete(step.path, step.format)

    def _run_rename(self, step: Rename) -> None:
        try:
            execute.fsync_rename(step.src, step.dst)
        except OSError as exc:  # fsync reports a full disk on some filesystems
            raise DumpError(f"cannot finish {step.dst.name}: {exc.strerror or exc}") from None
        self.outcome.file = str(step.dst)
        self.outcome.bytes = step.dst.stat().st_size

    def _run_remove(self, step: Remove) -> None:
        for path in step.paths:
            path.unlink(missing_ok=True)

    def _run_removestale(self, step: RemoveStale) -> None:
        for path in sorted(step.directory.glob(step.glob)):
            path.unlink(missing_ok=True)
            self.console.detail(f"removed {path.name} ({step.reason})", "yellow")


def execute_plan(ctx: Context, plan: Plan) -> list[Outcome]:
    """Run every stack's plan in turn; a failing stack never stops the others."""
    outcomes = []
    for stack_plan in plan.stacks:
        ctx.console.stack_header(stack_plan.stack, stack_plan.command)
        outcomes.append(StackRun(ctx, stack_plan).run())
    return outcomes
