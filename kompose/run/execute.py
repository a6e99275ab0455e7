"""Executing a Plan: failure semantics, per-stack outcomes, the run-wide hooks, the summary and the exit code.

Per stack: the steps in order (pre hooks among them); after a failure the plan's
clean-up (on_failure); then the post hooks (after success, or always when the policy
says so); then, after any failure, the on_error hooks. Around all stacks the same
pattern once: pre_run, the stacks, post_run, on_error.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from kompose.dumps import codecs
from kompose.dumps import files as dumps
from kompose.host import processes as execute
from kompose.hooks import context as hookcontext
from kompose.hooks import points as hooks
from kompose.engines.postgres import sql as postgres
from kompose.console import Console, Rate, human_size
from kompose.context import Context
from kompose.errors import DatabaseError, DockerError, DumpError, ExitCode, KomposeError, LockedError
from kompose.hooks.runner import HookRunner, HookScope, failed_state
from kompose.run.locks import stack_lock
from kompose.run.dump_steps import DumpSteps, now_iso
from kompose.run.repository_steps import RepositorySteps
from kompose.plan.steps import (
    HELPER_MOUNT, HOOK_STEPS, CheckDump, Compose, DumpInHelper, Exec, Network, Note, Plan, Remove, RemoveHelpers,
    RemoveStale, Rename, RunHooks, Sql, StackPlan, Step, describe, step_label,
)

DEFAULT_HOOK_TIMEOUT = hooks.DEFAULT_TIMEOUT


@dataclass
class Outcome:
    stack: str
    status: str  # ok | failed | skipped
    error: str | None = None
    duration: float = 0.0
    file: str | None = None
    bytes: int | None = None
    notes: list[str] = field(default_factory=list)
    failed_step: str | None = None  # the step or hook that failed first
    # what the operation found: manifest, verification results, retention decisions, row counts
    details: dict = field(default_factory=dict)


def exit_code(outcomes: list[Outcome], run_errors: list[str] | tuple = ()) -> ExitCode:
    if run_errors or any(o.status == "failed" for o in outcomes):
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


def hook_timeout(env) -> float:
    """KOMPOSE_HOOK_TIMEOUT, or the default. Raises ConfigError for a bad value."""
    return hooks.timeout(env)


class RunFiles:
    """What the stacks of one run share: the run id, the context files, the run-wide context."""

    def __init__(self, run_id: str | None = None):
        self.run_id = run_id or hookcontext.new_run_id()
        self.files = hookcontext.RunFiles(self.run_id)
        self.run_context_file = self.files.context_file("")

    def inherited(self) -> dict[str, str]:
        return hookcontext.read(self.run_context_file)

    def close(self) -> None:
        self.files.close()


class HookSequence:
    """The failure semantics around one operation, the same for a stack and for the whole run:
    after the main part, post hooks (policy), then on_error hooks after any failure."""

    def __init__(self, console, runner: HookRunner, outcome: Outcome):
        self.console = console
        self.runner = runner
        self.outcome = outcome
        self.failure: dict[str, str] | None = None

    def fail(self, step: Step | None, exc: KomposeError) -> None:
        """Record a failure; the first one stays the stack's error."""
        if self.failure is None:
            self.failure = failed_state(step, exc)
            self.outcome.status = "failed"
            self.outcome.error = exc.message
            self.outcome.failed_step = self.failure["KOMPOSE_FAILED_STEP"]
            self.console.detail(f"✗ {exc.message}", "red")
        else:
            self.console.detail(f"✗ {exc.message} (after the first failure)", "yellow")
            self.outcome.notes.append(exc.message)

    def post(self, steps: list[Step], policy: str) -> None:
        """Post hooks: after success; after a failure too under policy 'always' (KOMPOSE_STATUS=failed).

        A failing post hook fails the stack; under 'success' it also stops the remaining post hooks.
        """
        if not steps:
            return
        if self.failure is not None and policy != "always":
            self.console.detail("post hooks skipped: the operation failed (KOMPOSE_POST_POLICY=success)", "dim")
            return
        for step in steps:
            state = dict(self.failure) if self.failure else {"KOMPOSE_STATUS": "ok"}
            try:
                self.runner.run(step, state)
            except KomposeError as exc:
                self.fail(step, exc)
                if policy != "always":
                    break

    def on_error(self, steps: list[Step]) -> None:
        """on_error hooks, after a failure; each runs, and a failing one never hides the first error."""
        if self.failure is None:
            return
        for step in steps:
            try:
                self.runner.run(step, self.failure)
            except KomposeError as exc:
                message = f"on_error hook failed too: {exc.message}"
                self.console.detail(message, "yellow")
                self.outcome.notes.append(message)


class StackRun(DumpSteps, RepositorySteps):
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
        if isinstance(step, HOOK_STEPS):
            self.hooks.run(step, {"KOMPOSE_STATUS": "running"})
            return
        handler = getattr(self, f"_run_{type(step).__name__.lower()}")
        try:
            handler(step)
        except OSError as exc:
            # a full disk, a vanished directory: the stack fails with one line, never a traceback
            kind, text = describe(step)
            raise KomposeError(f"{kind} step failed: {exc.strerror or exc} ({text.splitlines()[0]})") from None

    def _run_note(self, step: Note) -> None:
        self.console.detail(step.text, "dim")

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

    def _progress(self, what: str) -> Callable[[int], None]:
        """An on_progress callback: adds up bytes, shows the rate now and then."""
        rate = Rate()

        def progress(count: int) -> None:
            if rate.add(count):
                self.console.progress(f"{what}: {rate.text()}")

        return progress

    def _run_exec(self, step: Exec) -> None:
        self.console.detail(step.what or describe(step)[1], "blue")
        progress = self._progress(step.what)
        # files stream through codecs: (de)compression on the host, and the sha256 of what is written
        try:
            stdin = codecs.Source(step.stdin_file, step.host_codec) if step.stdin_file else None
        except OSError as exc:
            raise DumpError(f"cannot read {step.stdin_file}: {exc.strerror}") from None
        try:
            stdout = codecs.Sink(step.stdout_file, step.host_codec, step.host_level) if step.stdout_file else None
        except OSError as exc:
            if stdin:
                stdin.abort()
            raise DumpError(f"cannot write {step.stdout_file}: {exc.strerror}") from None
        started = now_iso()
        started_clock = time.time()
        try:
            result = execute.container_exec(
                self.ctx.docker(), step.container.id, step.argv, dict(step.env), stdin=stdin, stdout=stdout,
                on_progress=progress,
            )
            for handle in (stdout, stdin):
                if handle:
                    handle.close()  # raises DumpError when (de)compression failed
        except DockerError:
            self._check_container(step.container, started_clock, step.what or step.argv[0])
            raise
        finally:
            for handle in (stdin, stdout):
                if handle:
                    handle.abort()
        if stdout:
            self.files[step.stdout_file] = {"started": started, "finished": now_iso(), "sha256": stdout.sha256,
                                            "bytes": step.stdout_file.stat().st_size}
        if result.exit_code != 0:
            self._check_container(step.container, started_clock, step.what or step.argv[0], result)
            raise DatabaseError(postgres.failure_message(step.argv[0], result.exit_code, result.stderr))

    def _run_dumpinhelper(self, step: DumpInHelper) -> None:
        from kompose.docker import helper as helper_container

        self.console.detail(step.what or describe(step)[1], "blue")
        progress = self._progress(step.what)
        started = now_iso()
        started_clock = time.time()
        try:
            result = helper_container.run_to_file(
                self.ctx.docker(), step.container.image_id or step.container.image, step.container.id, step.directory,
                HELPER_MOUNT, step.argv, dict(step.env), step.user, step.output, on_progress=progress,
                pipe=step.pipe,
            )
        except DockerError:
            self._check_container(step.container, started_clock, step.what or step.argv[0])
            raise
        if result.note:
            self.console.detail(result.note, "yellow")
        if result.exit_code != 0:
            # the helper lives in the database container's network: a stopped database shows as a lost server
            self._check_container(step.container, started_clock, step.what or step.argv[0], result)
            raise DatabaseError(postgres.failure_message(step.argv[0], result.exit_code, result.stderr))
        # kompose created the file (or the pipe) the helper mounts, and a dump is never empty: an
        # empty file means pg_dump wrote into another file of that name, in the engine's own view
        if result.bytes_out == 0:
            raise DumpError(
                f"pg_dump in the helper container succeeded but {step.output} stayed empty: the engine does "
                "not see this host's files; use --transport exec"
            )
        facts = {"started": started, "finished": now_iso()}
        if result.sha256:  # hashed while it grew: the manifest needs no second read
            facts.update(sha256=result.sha256, bytes=result.bytes_out)
        self.files[step.output] = facts

    def _run_removehelpers(self, step: RemoveHelpers) -> None:
        from kompose.docker import helper as helper_container

        for name in helper_container.remove_leftovers(self.ctx.docker(), step.directory):
            self.console.detail(f"removed helper container {name} ({step.reason})", "yellow")

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
            raise DatabaseError(
                postgres.failure_message(f"psql ({step.what})", result.exit_code, result.stderr, own_script=True)
            )
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
        dumps.check_complete(step.path, step.format, step.compression)

    def _run_rename(self, step: Rename) -> None:
        try:
            execute.fsync_rename(step.src, step.dst)
        except OSError as exc:  # fsync reports a full disk on some filesystems
            raise DumpError(f"cannot finish {step.dst.name}: {exc.strerror or exc}") from None
        if step.src in self.files:
            self.files[step.dst] = self.files.pop(step.src)
        self.outcome.file = str(step.dst)
        self.outcome.bytes = step.dst.stat().st_size

    def _run_remove(self, step: Remove) -> None:
        for path in step.paths:
            path.unlink(missing_ok=True)

    def _run_removestale(self, step: RemoveStale) -> None:
        for path in sorted(step.directory.glob(step.glob)):
            path.unlink(missing_ok=True)
            self.console.detail(f"removed {path.name} ({step.reason})", "yellow")


# commands whose stacks never run side by side, whatever --jobs says: an import or a
# rollback swaps databases, and two stacks may (wrongly) point at the same one
PARALLEL_COMMANDS_EXCLUDED = {"db:import", "db:rollback"}


def execute_plan(ctx: Context, plan: Plan, run: RunFiles | None = None) -> list[Outcome]:
    """Run every stack's plan (--jobs N: up to N at once); a failing stack never stops the others."""
    jobs = ctx.options.jobs
    if jobs > 1 and len(plan.stacks) > 1 and plan.command not in PARALLEL_COMMANDS_EXCLUDED:
        from kompose.run.parallel import run_parallel

        return run_parallel(
            ctx, plan.stacks, jobs, lambda stack_plan, console: StackRun(ctx, stack_plan, run, console).run()
        )
    outcomes = []
    for stack_plan in plan.stacks:
        ctx.console.stack_header(stack_plan.stack, stack_plan.command)
        outcomes.append(StackRun(ctx, stack_plan, run).run())
    return outcomes


@dataclass
class RunResult:
    outcomes: list[Outcome]
    # failures of the run-wide hooks (the stacks' own are in their outcomes)
    run_errors: list[str] = field(default_factory=list)
    run_id: str = ""


def _names(outcomes: list[Outcome], status: str) -> str:
    return " ".join(o.stack for o in outcomes if o.status == status)


def execute_run(ctx: Context, plan: Plan, planning_failures: list[Outcome] | None = None) -> RunResult:
    """The whole invocation: run-wide pre_run, every stack, then post_run and on_error.

    A failing pre_run runs no stack (they count as skipped, the run as failed).
    ``planning_failures`` are stacks that could not be planned: they count as failed.
    """
    failures = list(planning_failures or [])
    run = RunFiles()
    try:
        return _execute_run(ctx, plan, failures, run)
    finally:
        run.close()


def _execute_run(ctx: Context, plan: Plan, failures: list[Outcome], run: RunFiles) -> RunResult:
    console = ctx.console
    run_hooks = plan.run_hooks or RunHooks(ctx.root, None, {})
    summary = Outcome("run-wide hooks", "ok")
    scope = HookScope("", run_hooks.directory, run_hooks.hooks_file, run_hooks.env, run.run_id,
                      run.run_context_file)
    runner = HookRunner(ctx, scope, lambda text: console.detail(text, "blue"), lambda line: console.stream_line("", line))
    sequence = HookSequence(console, runner, summary)

    outcomes = list(failures)
    if run_hooks.pre:
        console.stack_header("run-wide", "pre_run")
        for step in run_hooks.pre:
            try:
                runner.run(step, {"KOMPOSE_STATUS": "running"})
            except KomposeError as exc:
                sequence.fail(step, exc)
                break
    if sequence.failure is None:
        outcomes += execute_plan(ctx, plan, run)
    else:
        console.detail(f"no stack was run: {step_label(step)} failed", "red")
        outcomes += [Outcome(sp.stack, "skipped", error=f"not run: {summary.failed_step} failed")
                     for sp in plan.stacks]

    if run_hooks.post or run_hooks.on_error:
        failed = _names(outcomes, "failed")
        if sequence.failure is None and failed:
            first = next(o for o in outcomes if o.status == "failed")
            sequence.failure = {
                "KOMPOSE_STATUS": "failed",
                "KOMPOSE_FAILED_STEP": f"{first.stack}: {first.failed_step or 'planning'}",
                "KOMPOSE_ERROR": f"{first.stack}: {first.error}",
            }
        outcome_env = {
            "KOMPOSE_SUCCEEDED": _names(outcomes, "ok"),
            "KOMPOSE_FAILED": failed,
            "KOMPOSE_SKIPPED": _names(outcomes, "skipped"),
        }
        scope.env = {**run_hooks.env, **outcome_env}
        posting = run_hooks.post and (sequence.failure is None or run_hooks.post_policy == "always")
        if posting or (run_hooks.on_error and sequence.failure is not None):
            console.stack_header("run-wide", "post_run" if sequence.failure is None else "post_run / on_error")
        sequence.post(run_hooks.post, run_hooks.post_policy)
        sequence.on_error(run_hooks.on_error)

    run_errors = [f"run-wide {summary.error}"] if summary.status == "failed" else []
    run_errors += [f"run-wide {note}" for note in summary.notes]
    return RunResult(outcomes, run_errors, run.run_id)
