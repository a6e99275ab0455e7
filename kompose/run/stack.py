"""Running one stack's plan: its steps in order, each by the handler registered for its kind
(run/handlers.py); after the first failure its clean-up, then post hooks and on_error hooks."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from kompose.console import Console, Rate, human_size
from kompose.context import Context
from kompose.engines import engine_for
from kompose.errors import DockerError, KomposeError, LockedError
from kompose.hooks.runner import HookRunner, HookScope
from kompose.docker import exec as docker_exec
from kompose.plan.model import StackPlan
from kompose.plan.render import describe
from kompose.plan.steps import (
    HookStep, Step,
)
from kompose.run.dump_steps import DumpSteps, now_iso
from kompose.run.restore_checks import RestoreChecks
from kompose.run.handlers import HANDLERS
from kompose.run.locks import stack_lock
from kompose.run.outcomes import Outcome
from kompose.run.sequence import HookSequence, RunFiles


class StackRun(DumpSteps, RestoreChecks):
    """Runs one stack's steps in order; on the first failure runs its on_failure steps, then its
    post hooks (per policy) and on_error hooks."""

    def __init__(self, ctx: Context, stack_plan: StackPlan, run: RunFiles | None = None,
                 console: Console | None = None):
        self.ctx = ctx
        self.plan = stack_plan
        # a stack running beside others (--jobs) writes into its own buffered console
        self.console = console or ctx.console
        self.outcome = Outcome(stack_plan.stack, "ok")
        self.run_files = run
        self.files: dict[Path, dict] = {}  # what this run learned about files (see run_dumps)
        self.started_at: str | None = None
        # the engine whose tools the steps run (how to read their failures)
        self.engine = engine_for(stack_plan.env)

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
        own_files = self.run_files is None
        run = self.run_files or RunFiles()
        try:
            return self._run_sequence(run)
        finally:
            if own_files:
                run.close()

    def _run_sequence(self, run: RunFiles) -> Outcome:
        started = time.monotonic()
        self.started_at = now_iso()
        scope = HookScope(
            self.plan.stack, self.plan.directory, self.plan.hooks_file, self.plan.env, run.run_id,
            run.files.context_file(self.plan.stack), run.inherited(),
        )
        self.hooks = HookRunner(
            self.ctx, scope, lambda text: self.console.detail(text, "blue"),
            lambda line: self.console.stream_line("", line),
        )
        sequence = HookSequence(self.console, self.hooks, self.outcome)
        step: Step | None = None
        try:
            for step in self.plan.steps:
                self.run_step(step)
        except KomposeError as exc:
            sequence.fail(step, exc)
            self._clean_up()
        except KeyboardInterrupt:
            # Ctrl-C or SIGTERM: clean up as after a failure (no .partial, no temporary
            # database left), then let the interrupt end the run
            self.console.detail("✗ interrupted; cleaning up", "red")
            self._clean_up()
            raise
        # after the operation: its post hooks never undo it (no clean-up runs after them)
        sequence.post(self.plan.post, self.plan.post_policy)
        sequence.on_error(self.plan.on_error)
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
        if isinstance(step, HookStep):
            self.hooks.run(step, {"KOMPOSE_STATUS": "running"})
            return
        try:
            HANDLERS[type(step)](self, step)
        except OSError as exc:
            # a full disk, a vanished directory: the stack fails with one line, never a traceback
            kind, text = describe(step)
            raise KomposeError(f"{kind} step failed: {exc.strerror or exc} ({text.splitlines()[0]})") from None

    # -- what handlers use

    def progress(self, what: str) -> Callable[[int], None]:
        """An on_progress callback: adds up bytes, shows the rate now and then."""
        rate = Rate()

        def progress(count: int) -> None:
            if rate.add(count):
                self.console.progress(f"{what}: {rate.text()}")

        return progress

    def check_container(self, container, started: float, what: str, result=None) -> None:
        """Raise DockerError naming the container when it stopped, vanished or restarted during ``what``.

        A tool killed by a signal, or one that lost its server, waits a moment for the
        engine to catch up: the tools die before the container is marked stopped.
        """
        settle = 0.0
        if result is None or result.exit_code >= 128 or self.engine.lost_connection(result.stderr):
            settle = 3.0
        trouble = docker_exec.container_trouble(self.ctx.docker(), container.id, started, settle)
        if trouble:
            raise DockerError(f"the database container {container.name} {trouble} during {what}")
