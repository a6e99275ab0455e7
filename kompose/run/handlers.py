"""Which code runs each step kind: the one registry of step handlers.

A handler is ``handler(run, step) -> None``; it raises KomposeError when the step fails.
Hook kinds are run by their own modules (hooks/kinds/) through StackRun.run_step.

The core step kinds (plan/steps.py) are listed below. A room with step kinds of its own
(repositories, notify, …) keeps them in one module that defines each frozen dataclass, registers
its renderer with ``@plan.render.describe.register`` and maps it to its handler in ``STEPS``; that
module is one line in STEP_MODULES.
"""

from __future__ import annotations

import importlib
import io
from typing import Callable

import time

from kompose.dumps import codecs
from kompose.dumps import files as dumps
from kompose.docker import exec as docker_exec
from kompose.errors import DatabaseError, DockerError, DumpError, KomposeError
from kompose.host import processes as execute
from kompose.host import swap_mark
from kompose.host.files import fsync_rename
from kompose.plan import steps as s
from kompose.plan.render import describe
from kompose.plan.steps import (
    HELPER_MOUNT, CheckDump, Compose, DumpInHelper, Exec, Network, Note, Remove, RemoveHelpers, RemoveStale, Rename,
    Sql,
)
from kompose.run.dump_steps import DumpSteps, now_iso
from kompose.run.restore_checks import RestoreChecks


# a handler gets the StackRun running the stack (its console, ctx, engine, files) and the step
Handler = Callable[[object, object], None]


def run_note(run, step: Note) -> None:
    run.console.detail(step.text, "dim")


def run_compose(run, step: Compose) -> None:
    argv = [*execute.compose_command(), *step.argv[2:]]
    run.console.detail("$ " + " ".join(step.argv), "blue")
    if step.stdin == "terminal":
        # an interactive program (exec … sh): compose gets the terminal itself
        code = execute.run_in_terminal(argv, run.plan.directory, run.plan.env, what="docker compose")
    else:
        code = execute.run_streamed(
            argv, run.plan.directory, run.plan.env, lambda line: run.console.stream_line("", line),
            what="docker compose", stdin_passthrough=step.stdin == "inherit",
        ).exit_code
    if code != 0:
        raise KomposeError(f"docker compose {step.argv[2] if len(step.argv) > 2 else ''} failed with exit code {code}")


def run_network(run, step: Network) -> None:
    from docker.errors import APIError

    client = run.ctx.docker()
    try:
        if not any(n.name == step.name for n in client.networks.list(names=[step.name])):
            client.networks.create(step.name, driver="bridge")
            run.console.detail(f"created network {step.name}", "blue")
    except APIError as exc:
        # two stacks starting at once may both try: the loser finds it made
        if not any(n.name == step.name for n in client.networks.list(names=[step.name])):
            raise KomposeError(f"cannot create network {step.name}: {exc.explanation or exc}") from None


# a check and a program in one exec (run_exec's ``check``): the check's psql (its argv the first
# $1 arguments, its script on stdin) runs beside the program, whose output streams meanwhile; when
# the check failed or printed anything the exec exits CHECK_DID_NOT_PASS once both ended, and the
# caller throws that output away and runs the check on its own (its exact report, RECOVER when
# needed), then the program again. A background job's stdin is /dev/null: the check reads fd 3.
CHECK_DID_NOT_PASS = 79
CHECKED_EXEC = (
    'n=$1; shift; c=; i=1\n'
    'while [ "$i" -le "$n" ]; do c="$c \\"\\${$i}\\""; i=$((i + 1)); done\n'
    'exec 3<&0\n'
    '(out=$(eval "$c" <&3) || exit 79; case "$out" in *[![:space:]]*) exit 79;; esac) &\n'
    'check=$!; exec 3<&-; shift "$n"\n'
    '"$@" </dev/null; status=$?\n'
    'wait "$check" || exit 79\n'
    'exit "$status"\n'
)


def checked_argv(check_argv: tuple[str, ...], argv: tuple[str, ...]) -> tuple[str, ...]:
    """One exec: the check (``check_argv``, reading its script on stdin), then ``argv`` (CHECKED_EXEC)."""
    return ("sh", "-c", CHECKED_EXEC, "kompose", str(len(check_argv)), *check_argv, *argv)


def run_exec(run, step: Exec, check: Sql | None = None) -> bool:
    """Run ``step``; with ``check`` (a psql check of the same container and environment), the check
    beside it in the same exec (CHECKED_EXEC). Returns False when the check did not pass or the
    container has no sh: what was streamed is no dump (the caller's run of the step after the check
    on its own rewrites the file, its failure removes it)."""
    # said as it starts, beside a check too: a dump that waits on a table lock is seen waiting
    run.console.detail(step.what or describe(step)[1], "blue")
    progress = run.progress(step.what, step if (step.stdin_file or step.stdout_file) else None)
    # an import's progress is the bytes of its file read (compressed ones for a compressed dump)
    counted = step.stdin_file is not None and bool(progress)
    # files stream through codecs: (de)compression on the host, and the sha256 of what is written
    try:
        stdin = codecs.Source(step.stdin_file, step.host_codec, progress if counted else None) \
            if step.stdin_file else None
    except OSError as exc:
        raise DumpError(f"cannot read {step.stdin_file}: {exc.strerror}") from None
    if stdin and step.guard:
        stdin = run._guard_stdin(step, stdin)  # run/dump_steps.py: the plain-dump guard
    try:
        stdout = codecs.Sink(step.stdout_file, step.host_codec, step.host_level) if step.stdout_file else None
    except OSError as exc:
        if stdin:
            stdin.abort()
        raise DumpError(f"cannot write {step.stdout_file}: {exc.strerror}") from None
    started = now_iso()
    started_clock = time.time()
    sent = _Counted(stdin) if counted else stdin  # read, not sent with sendfile(2), so the reads are counted
    if step.stdin_file:
        run._open_check_session(step)  # the restored-table check's session connects meanwhile
    argv, env = step.argv, dict(step.env)
    if check is not None:
        argv, env = checked_argv(check.argv, step.argv), {**dict(check.env), **env}
        sent = io.BytesIO(check.script.encode())
    try:
        result = docker_exec.container_exec(
            run.ctx.docker(), step.container.id, argv, env, stdin=sent, stdout=stdout,
            on_progress=None if stdin is not None else progress,
        )
        if check is not None and (result.exit_code == CHECK_DID_NOT_PASS or (
                result.exit_code in (126, 127) and result.bytes_out == 0)):
            # the check did not pass (126, 127: no sh, or no such program): what streamed is no dump
            run.console.detail("the check beside it did not pass: that output is thrown away; the check "
                               "on its own, then the dump again", "yellow")
            return False
        for handle in (stdout, stdin):
            if handle:
                handle.close()  # raises DumpError when (de)compression failed
    except DockerError:
        run.check_container(step.container, started_clock, step.what or step.argv[0])
        raise
    finally:
        progress.close()
        for handle in (stdin, stdout):
            if handle:
                handle.abort()
    if stdout:
        run.files[step.stdout_file] = {"started": started, "finished": now_iso(), "sha256": stdout.sha256,
                                        "bytes": step.stdout_file.stat().st_size, "rows": stdout.rows,
                                        "rows_kind": stdout.rows_kind}
    if stdin and step.guard:
        run._guarded(step, stdin)
    if result.exit_code != 0:
        run.check_container(step.container, started_clock, step.what or step.argv[0], result)
        raise DatabaseError(_failure(run, step, result))
    if not stdout and result.stdout:
        # a script's own report (MariaDB's swap and recovery say what they did), as Sql steps show theirs
        for line in result.stdout.decode("utf-8", "replace").splitlines():
            if line.strip():
                run.console.stream_line("", line)
    return True


def _failure(run, step, result) -> str:
    """The tool's failure in one line; for a dump that gave up waiting for a table lock, who holds it."""
    message = run.engine.failure_message(step.argv[0], result.exit_code, result.stderr)
    if not run.engine.lock_wait_failed(result.stderr):
        return message
    waited = next((w.split("=", 1)[1] for w in step.argv if w.startswith("--lock-wait-timeout=")), "")
    waited = f"{int(waited) / 1000:g} s (KOMPOSE_LOCK_WAIT)" if waited.isdigit() else "its time limit"
    try:
        argv, script = run.engine.lock_holders(tuple(step.argv))
        listed = docker_exec.container_exec(run.ctx.docker(), step.container.id, argv, dict(step.env),
                                            stdin=io.BytesIO(script.encode()))
        holders = [line.strip() for line in listed.stdout.decode("utf-8", "replace").splitlines() if line.strip()]
    except (KomposeError, NotImplementedError):
        holders = []
    who = "; ".join(holders) if holders else "the session holding it has ended or cannot be seen"
    return f"{step.argv[0]} waited {waited} for a table another session has locked, then gave up: {who}"


class _Counted:
    """A stdin source whose reads the progress bar counts (codecs.Source's on_progress): it hides
    fileno(), so the exec reads it instead of using sendfile(2) — only when a bar is shown."""

    def __init__(self, source):
        self._source = source
        self.name = getattr(source, "name", "")

    def read(self, size: int = -1) -> bytes:
        return self._source.read(size)

    def close(self) -> None:
        self._source.close()

    def abort(self) -> None:
        self._source.abort()


def run_dumpinhelper(run, step: DumpInHelper) -> None:
    from kompose.docker import helper as helper_container

    run.console.detail(step.what or describe(step)[1], "blue")
    progress = run.progress(step.what, step)
    started = now_iso()
    started_clock = time.time()
    # a plain dump's COPY rows, counted as the copier passes the bytes (the manifest's row counts
    # then need no second read of the file); a gzipped stream turns the counter off by itself
    counter = None
    if step.pipe is not None and getattr(getattr(run, "engine", None), "plain_guard", False):
        from kompose.dumps.plain_sql import Scanner

        counter = Scanner(step.output.name, rewrite=False)
    try:
        result = helper_container.run_to_file(
            run.ctx.docker(), step.container.image_id or step.container.image, step.container.id, step.directory,
            HELPER_MOUNT, step.argv, dict(step.env), step.user, step.output, on_progress=progress,
            pipe=step.pipe, tap=counter.feed if counter is not None else None,
        )
    except DockerError:
        run.check_container(step.container, started_clock, step.what or step.argv[0])
        raise
    finally:
        progress.close()
    if result.note:
        run.console.detail(result.note, "yellow")
    if result.exit_code != 0:
        # the helper lives in the database container's network: a stopped database shows as a lost server
        run.check_container(step.container, started_clock, step.what or step.argv[0], result)
        raise DatabaseError(_failure(run, step, result))
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
        if counter is not None and result.tapped and not counter.disabled:
            try:
                counter.end()
                facts["rows"] = dict(counter.scan.rows)
            except DumpError:
                pass  # the manifest counts from the file, and says why it cannot
    run.files[step.output] = facts


def run_removehelpers(run, step: RemoveHelpers) -> None:
    from kompose.docker import helper as helper_container

    for name in helper_container.remove_leftovers(run.ctx.docker(), step.directory):
        run.console.detail(f"removed helper container {name} ({step.reason})", "yellow")


def run_sql(run, step: Sql) -> None:
    if not step.optional:
        return run_script(run, step)
    try:
        run_script(run, step)
    except KomposeError as exc:
        run.console.detail(f"could not {step.what}: {exc.message}; going on", "yellow")


def run_script(run, step: Sql) -> None:
    run.console.detail(step.what, "blue")
    started = time.time()
    if step.background:
        docker_exec.start_detached(run.ctx.docker(), step.container.id, step.argv, dict(step.env))
        return
    if step.mark and step.closes:
        swap_mark.write_mark(step.mark, step.what)
    try:
        result = run._session_run(step, step.script)  # its session may have been opened early
    except DockerError:
        run.check_container(step.container, started, step.what)
        raise
    if result.exit_code != 0:
        run.check_container(step.container, started, step.what, result)
        message = run.engine.failure_message(f"psql ({step.what})", result.exit_code, result.stderr, own_script=True)
        if step.hint and result.exit_code == 2:
            message += f"; {step.hint}"  # psql could not connect: what to set so that it can
        raise DatabaseError(message)
    if step.mark:
        swap_mark.clear_mark(step.mark)
    for line in result.stdout.decode("utf-8", "replace").splitlines():
        if line.strip():
            run.console.stream_line("", line)


def run_checkdump(run, step: CheckDump) -> None:
    dumps.check_complete(step.path, step.format, step.compression)


def run_rename(run, step: Rename) -> None:
    try:
        fsync_rename(step.src, step.dst)
    except OSError as exc:  # fsync reports a full disk on some filesystems
        raise DumpError(f"cannot finish {step.dst.name}: {exc.strerror or exc}") from None
    if step.src in run.files:
        run.files[step.dst] = run.files.pop(step.src)
    run.outcome.file = str(step.dst)
    run.outcome.bytes = step.dst.stat().st_size


def run_remove(run, step: Remove) -> None:
    for path in step.paths:
        path.unlink(missing_ok=True)


def run_removestale(run, step: RemoveStale) -> None:
    for path in sorted(step.directory.glob(step.glob)):
        path.unlink(missing_ok=True)
        run.console.detail(f"removed {path.name} ({step.reason})", "yellow")


HANDLERS: dict[type, Handler] = {
    s.Note: run_note,
    s.Compose: run_compose,
    s.Network: run_network,
    s.Exec: run_exec,
    s.DumpInHelper: run_dumpinhelper,
    s.RemoveHelpers: run_removehelpers,
    s.Sql: run_sql,
    s.CheckDump: run_checkdump,
    s.Rename: run_rename,
    s.Remove: run_remove,
    s.RemoveStale: run_removestale,
    s.VerifyDump: DumpSteps._run_verifydump,
    s.VerifyDumps: DumpSteps._run_verifydumps,
    s.CheckChecksum: DumpSteps._run_checkchecksum,
    s.StartChecksum: DumpSteps._run_startchecksum,
    s.CheckServerVersion: DumpSteps._run_checkserverversion,
    s.WriteManifest: DumpSteps._run_writemanifest,
    s.Retention: DumpSteps._run_retention,
    s.RemoveOrphans: DumpSteps._run_removeorphans,
    s.CountRows: DumpSteps._run_countrows,
    s.RecordDrill: DumpSteps._run_recorddrill,
    s.CheckRestored: RestoreChecks._run_checkrestored,
}

# modules that define step kinds of their own, each with STEPS = {StepKind: handler}
STEP_MODULES: tuple[str, ...] = (
    "kompose.run.dump_needs",
    "kompose.run.export_checks",  # db:export's checks before pg_dump, RECOVER only when needed
    "kompose.run.tools",
    "kompose.run.repository_steps",  # restic repositories: push, pull, retention
    "kompose.run.mariadb_steps",  # MariaDB and MySQL: the rows of a restored database
)


class _Handlers(dict):
    """HANDLERS: a room's module is imported when one of its step kinds is first looked up (a plan
    holding such a step has imported its module already), or when the registry is listed whole."""

    def __missing__(self, kind: type) -> Handler:
        if getattr(kind, "__module__", "") not in STEP_MODULES:
            raise KeyError(kind)
        self.update(importlib.import_module(kind.__module__).STEPS)
        return dict.__getitem__(self, kind)

    def __contains__(self, kind) -> bool:
        try:
            self[kind]
        except KeyError:
            return False
        return True

    def load_all(self) -> "_Handlers":
        for module in STEP_MODULES:
            self.update(importlib.import_module(module).STEPS)
        return self


HANDLERS = _Handlers(HANDLERS)
