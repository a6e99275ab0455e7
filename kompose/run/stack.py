"""Running one stack's plan: its steps in order, each by the handler registered for its kind
(run/handlers.py); after the first failure its clean-up, then post hooks and on_error hooks."""

from __future__ import annotations

import time
from pathlib import Path

from kompose.console import Console, NoBar, human_size
from kompose.context import Context
from kompose.engines import engine_for
from kompose.dumps import codecs
from kompose.dumps import files as dumps
from kompose.errors import DatabaseError, DockerError, DumpError, KomposeError, LockedError
from kompose.hooks.runner import HookRunner, HookScope
from kompose.docker import exec as docker_exec
from kompose.host import processes as execute
from kompose.host.files import fsync_rename
from kompose.plan.model import StackPlan
from kompose.plan.render import describe
from kompose.plan.steps import (
    HELPER_MOUNT, CheckDump, Compose, DumpInHelper, Exec, HookStep, Network, Note, Remove, RemoveHelpers, RemoveStale,
    Rename, Sql, Step,
)
from kompose.run.dump_steps import DumpSteps, now_iso
from kompose.run.locks import stack_lock
from kompose.run.outcomes import Outcome
from kompose.run.sequence import HookSequence, RunFiles


class StackRun(DumpSteps):
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
            self.console.failure(exc.message)
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
        from kompose.run.handlers import HANDLERS

        try:
            HANDLERS[type(step)](self, step)
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

    def _progress(self, what: str, total: int | None = None):
        """An on_progress callback (close() it when the transfer ends): a progress bar with the
        estimated total on a terminal; elsewhere nothing."""
        return self.console.transfer(what or "transfer", total)

    def _estimate(self, step) -> int | None:
        """The bytes a transfer step will count, estimated, for the bar's total and percent: an
        import sends its file (uncompressed), an export receives about the database's size (plain),
        or about the previous dump of the same kind (custom). None: no estimate."""
        if not self.console.shows_progress():
            return None
        try:
            source = getattr(step, "stdin_file", None)
            if source is not None:
                return source.stat().st_size if not getattr(step, "host_codec", "") else None
            output = getattr(step, "stdout_file", None) or getattr(step, "output", None)
            if output is None:
                return None
            # what is counted is compressed (custom format; a helper's gzip/zstd file): about the last
            # dump of the kind; else the SQL text, about the database's size
            counted_compressed = ".dump" in output.name or (
                isinstance(step, DumpInHelper) and any(f".sql.{c}" in output.name for c in ("gz", "zst")))
            if counted_compressed:
                return _previous_dump_size(output)
            return _database_size(self.ctx, step, self.engine, self.plan.env, self.plan.stack)
        except Exception:  # an estimate never fails a run
            return None

    def _run_exec(self, step: Exec) -> None:
        self.console.detail(step.what or describe(step)[1], "blue")
        progress = self._progress(step.what, self._estimate(step)) if (step.stdin_file or step.stdout_file) \
            else self._progress(step.what)
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
        if stdin is not None and not isinstance(progress, NoBar):
            stdin = _Counted(stdin, progress)  # an import's progress is what it sends
        try:
            result = docker_exec.container_exec(
                self.ctx.docker(), step.container.id, step.argv, dict(step.env), stdin=stdin, stdout=stdout,
                on_progress=None if stdin is not None else progress,
            )
            for handle in (stdout, stdin):
                if handle:
                    handle.close()  # raises DumpError when (de)compression failed
        except DockerError:
            self._check_container(step.container, started_clock, step.what or step.argv[0])
            raise
        finally:
            progress.close()
            for handle in (stdin, stdout):
                if handle:
                    handle.abort()
        if stdout:
            self.files[step.stdout_file] = {"started": started, "finished": now_iso(), "sha256": stdout.sha256,
                                            "bytes": step.stdout_file.stat().st_size}
        if result.exit_code != 0:
            self._check_container(step.container, started_clock, step.what or step.argv[0], result)
            raise DatabaseError(self.engine.failure_message(step.argv[0], result.exit_code, result.stderr))

    def _run_dumpinhelper(self, step: DumpInHelper) -> None:
        from kompose.docker import helper as helper_container

        self.console.detail(step.what or describe(step)[1], "blue")
        progress = self._progress(step.what, self._estimate(step))
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
        finally:
            progress.close()
        if result.note:
            self.console.detail(result.note, "yellow")
        if result.exit_code != 0:
            # the helper lives in the database container's network: a stopped database shows as a lost server
            self._check_container(step.container, started_clock, step.what or step.argv[0], result)
            raise DatabaseError(self.engine.failure_message(step.argv[0], result.exit_code, result.stderr))
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
            result = docker_exec.container_exec(
                self.ctx.docker(), step.container.id, step.argv, dict(step.env),
                stdin=io.BytesIO(step.script.encode()),
            )
        except DockerError:
            self._check_container(step.container, started, step.what)
            raise
        if result.exit_code != 0:
            self._check_container(step.container, started, step.what, result)
            raise DatabaseError(
                self.engine.failure_message(f"psql ({step.what})", result.exit_code, result.stderr, own_script=True)
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
        if result is None or result.exit_code >= 128 or self.engine.lost_connection(result.stderr):
            settle = 3.0
        trouble = docker_exec.container_trouble(self.ctx.docker(), container.id, started, settle)
        if trouble:
            raise DockerError(f"the database container {container.name} {trouble} during {what}")

    def _run_checkdump(self, step: CheckDump) -> None:
        dumps.check_complete(step.path, step.format, step.compression)

    def _run_rename(self, step: Rename) -> None:
        try:
            fsync_rename(step.src, step.dst)
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


class _Counted:
    """A stdin source whose reads are counted for the progress bar (it hides fileno(), so the exec
    reads it instead of sendfile(2): only when a bar is shown)."""

    def __init__(self, source, progress):
        self._source = source
        self._progress = progress
        self.name = getattr(source, "name", "")

    def read(self, size: int = -1) -> bytes:
        chunk = self._source.read(size)
        if chunk:
            self._progress(len(chunk))
        return chunk

    def close(self) -> None:
        self._source.close()

    def abort(self) -> None:
        self._source.abort()


def _previous_dump_size(output: Path) -> int | None:
    """The size of the newest finished dump of the same kind beside ``output`` (an estimate)."""
    final = output.name.removesuffix(".partial")
    database, _, rest = final.rpartition("_")
    database = database.rpartition("_")[0]
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
