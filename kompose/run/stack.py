"""Running one stack's plan: its steps in order, each by the handler registered for its kind
(run/handlers.py); after the first failure its clean-up, then post hooks and on_error hooks."""

from __future__ import annotations

import time
from pathlib import Path

from kompose.console import Console, human_size
from kompose.context import Context
from kompose.engines import engine_for
from kompose.errors import DockerError, KomposeError, LockedError
from kompose.hooks.runner import HookRunner, HookScope
from kompose.docker import exec as docker_exec
from kompose.plan.model import StackPlan
from kompose.plan.render import describe
from kompose.plan.steps import (
    DumpInHelper, HookStep, Step,
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
            self._make_dump_dir()
            with stack_lock(self.plan.dump_dir, self.ctx.options.lock_timeout):
                return self._run_steps()
        except LockedError as exc:
            self.outcome.status = "skipped"
            self.outcome.error = exc.message
            self.console.detail(f"skipped: {exc.message}", "yellow")
            return self.outcome
        except KomposeError as exc:  # the lock could not be taken (the steps catch their own errors)
            self.outcome.status = "failed"
            self.outcome.error = exc.message
            self.console.failure(exc.message)
            return self.outcome

    def _make_dump_dir(self) -> None:
        """The stack's dump directory (KOMPOSE_DUMP_DIR), created mode 0700 when missing: it holds
        the lock, the dumps and the state files of every command that takes the lock."""
        from kompose.host.files import make_private_dir

        try:
            if make_private_dir(self.plan.dump_dir):
                self.console.detail(f"created the dump directory {self.plan.dump_dir} (mode 0700)", "yellow")
        except OSError as exc:
            raise KomposeError(f"cannot create the dump directory {self.plan.dump_dir}: "
                               f"{exc.strerror or exc}") from None

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
            lambda line: self.console.stream_error_line("", line),
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
            self.console.failure("interrupted; cleaning up")
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
        self._close_check_sessions()  # a session opened early for the restored-table check ends
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

    def progress(self, what: str, step=None):
        """An on_progress callback for a transfer (close() it when the transfer ends): on a terminal a
        progress bar with the estimated total (see estimate), elsewhere nothing."""
        return self.console.transfer(what or "transfer", self.estimate(step) if step is not None else None)

    def estimate(self, step) -> int | None:
        """The bytes a transfer step will count, estimated, for the bar's total and percent: an
        import reads its file (the compressed bytes of a compressed one: exact), an export receives
        about the database's size (plain SQL, also when the host compresses it: zstd), or about the
        previous dump of the same kind (what is counted is compressed: custom format, gzip, which
        pg_dump compresses in the container). None: no estimate (the bar shows bytes and rate only)."""
        if not self.console.shows_progress():
            return None
        try:
            source = getattr(step, "stdin_file", None)
            if source is not None:
                return source.stat().st_size
            output = getattr(step, "stdout_file", None) or getattr(step, "output", None)
            if output is None:
                return None
            counted_compressed = ".dump" in output.name or ".sql.gz" in output.name or (
                isinstance(step, DumpInHelper) and ".sql.zst" in output.name)
            if counted_compressed:
                return _previous_dump_size(output)
            return _database_size(self.ctx, step, self.engine, self.plan.env, self.plan.stack)
        except Exception:  # an estimate never fails a run
            return None

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


def _previous_dump_size(output: Path) -> int | None:
    """The size of the newest finished dump of the same kind beside ``output`` (an estimate)."""
    final = output.name.removesuffix(".partial")
    database = final.rpartition("_")[0].rpartition("_")[0]
    suffix = final[final.index("."):] if "." in final else ""
    previous = sorted((p for p in output.parent.glob(f"{database}_*{suffix}") if p.name != final),
                      key=lambda p: p.name, reverse=True)
    return previous[0].stat().st_size if previous else None


def _database_size(ctx, step, engine, env, stack: str) -> int | None:
    """The database's size on the server (the engine's SIZE_QUERY, pg_database_size), asked in its
    container with the stack's credentials (in the exec's environment, as every step)."""
    import io

    query = getattr(engine, "SIZE_QUERY", "")
    container = getattr(step, "container", None)
    if not query or container is None or not container.id:
        return None
    conn = engine.connection(env, stack)
    argv = engine.script_argv(conn, conn.database, ())
    result = docker_exec.container_exec(ctx.docker(), container.id, argv, conn.exec_env(),
                                        stdin=io.BytesIO(query.encode()))
    text = bytes(result.stdout).decode(errors="replace").strip()
    return int(text) if result.exit_code == 0 and text.isdigit() else None
