"""Dumps kompose.sh restored: what a dump needs of the server, checked before ``--in-place`` drops
anything; the server's parameter names for the restore guard, which leaves out a plain dump's SET of
any other and, with ``--no-owner``, its ALTER … OWNER TO (dumps/compat.left_out).

One step kind of its own (CheckDumpNeeds: dataclass, renderer, handler, STEPS), and
what the restore guard (dumps/plain_sql) needs for the Exec step's ``settings_argv`` / ``no_owner``:
``server_settings`` and ``report``.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from pathlib import Path

from kompose.docker import exec as docker_exec
from kompose.dumps import codecs, compat
from kompose.dumps import verify
from kompose.errors import DumpError, KomposeError
from kompose.plan.render import describe
from kompose.plan.steps import Container, Exec

# what the server has: one row per role, available extension and parameter, and its version
SERVER_FACTS = """\
SELECT 'role', rolname FROM pg_roles
UNION ALL SELECT 'extension', name FROM pg_available_extensions
UNION ALL SELECT 'setting', name FROM pg_settings
UNION ALL SELECT 'version', current_setting('server_version_num');
"""
# what a restore asks of the server before it starts, in one session (the version check, the guard's
# parameter names, whether this psql knows \restrict): one exec, asked once per run (server_facts)
RESTORE_FACTS = """\
\\echo client :VERSION_NAME
SELECT 'server', current_setting('server_version_num');
SELECT 'setting', name FROM pg_settings;
"""
LIST_PREFIX = 8 << 20


@dataclass(frozen=True)
class CheckDumpNeeds:
    """Before ``--in-place`` drops the live database: the roles the dump's objects belong to (not with
    ``no_owner``) and its grants name, the extensions it creates, and its PostgreSQL major version,
    against what the server has. Fails naming each missing piece."""

    container: Container
    argv: tuple[str, ...]  # a psql reading a script, on the maintenance database
    env: tuple[tuple[str, str], ...]
    dump: Path
    format: str
    compression: str
    no_owner: bool = False


@describe.register
def _describe(step: CheckDumpNeeds) -> tuple[str, str]:
    owners = "grantees" if step.no_owner else "owners and grantees"
    return "check", (f"{step.dump.name} needs: its {owners}' roles, its extensions and a server of its major version "
                     f"or newer, present before anything is dropped")


def _facts(run, step) -> dict[str, set[str]]:
    result = docker_exec.container_exec(run.ctx.docker(), step.container.id, step.argv, dict(step.env),
                                        stdin=io.BytesIO(SERVER_FACTS.encode()))
    if result.exit_code != 0:
        raise DumpError(run.engine.failure_message("psql (what the server has)", result.exit_code, result.stderr,
                                                   own_script=True))
    facts: dict[str, set[str]] = {"role": set(), "extension": set(), "setting": set(), "version": set()}
    for line in result.stdout.decode("utf-8", "replace").splitlines():
        kind, _, name = line.partition("\t")
        if kind in facts:
            facts[kind].add(name)
    return facts


def _custom_needs(run, step) -> compat.Needs:
    """Owners and extensions from a custom archive's table of contents (pg_restore --list)."""
    result = run._pg_restore(step.container, ("pg_restore", "--list"), step.dump, LIST_PREFIX)
    if result.exit_code != 0:
        result = run._pg_restore(step.container, ("pg_restore", "--list"), step.dump, None)
    found = compat.Needs()
    for line in result.stdout.decode("utf-8", "replace").splitlines():
        if line.startswith(";") or ";" not in line:
            continue
        words = line.split(";", 1)[1].split()
        if len(words) < 4:
            continue
        desc = words[2]
        if desc == "EXTENSION" and len(words) >= 5:
            found.extensions.add(words[4])
        elif words[-1] != "-" and desc not in ("EXTENSION", "COMMENT", "ACL"):
            found.owners.add(words[-1])
    found.roles |= found.owners
    return found


def _run(run, step: CheckDumpNeeds) -> None:
    run.console.detail(describe(step)[1], "blue")
    facts = _facts(run, step)
    if step.format == "plain":
        try:
            source = codecs.Source(step.dump, step.compression)
        except OSError as exc:
            raise DumpError(f"cannot read {step.dump}: {exc.strerror}") from None
        try:
            needs = compat.needs(source)
        finally:
            source.close()
    else:
        needs = _custom_needs(run, step)
    problems = []
    # with --no-owner the owners do not matter; the roles grants name still must exist
    roles = needs.roles - (needs.owners - needs.grantees) if step.no_owner else needs.roles
    missing = sorted(roles - facts["role"])
    if missing:
        how = "" if step.no_owner else " (--no-owner gives the objects to DB_USER instead)"
        problems.append(f"roles missing on this server: {', '.join(missing)}{how}")
    missing = sorted(needs.extensions - facts["extension"])
    if missing:
        problems.append(f"extensions this server cannot create: {', '.join(missing)}")
    server = max((int(v) for v in facts["version"] if v.isdigit()), default=0)
    versions = verify.dump_versions(step.dump, step.format, step.compression)
    numbers = [n for n in (verify.version_number(v) for v in versions) if n]
    if server and numbers:
        server_major = server // 10000 * 10000 if server >= 100000 else server // 100 * 100
        if max(numbers) > server_major:
            problems.append(f"the dump comes from PostgreSQL {verify.major_text(max(numbers))}, newer than this "
                            f"server's {verify.major_text(server_major)}")
    if problems:
        raise DumpError(f"{step.dump.name} cannot be restored in place, nothing was dropped: " + "; ".join(problems)
                        + ". Create what is missing, or import without --in-place (the safe path tries the "
                        "restore on a temporary copy first)")
    run.console.detail("the server has every role and extension the dump needs", "dim")


@dataclass(frozen=True)
class RestoreFacts:
    """What one psql session told about the server and itself (server_facts)."""

    exit_code: int
    stderr: bytes
    client: str = ""  # psql's own version, "15.14"
    server: int | None = None  # server_version_num
    settings: frozenset[str] = frozenset()


def _ask_facts(run, container: Container, argv: tuple[str, ...], env) -> RestoreFacts:
    result = docker_exec.container_exec(run.ctx.docker(), container.id, argv, dict(env),
                                        stdin=io.BytesIO(RESTORE_FACTS.encode()))
    client, server, settings = "", None, set()
    for line in result.stdout.decode("utf-8", "replace").splitlines():
        kind, _, value = line.partition("\t")
        if kind.startswith("client ") and not value:
            client = kind[len("client "):].strip()
        elif kind == "server" and value.strip().isdigit():
            server = int(value.strip())
        elif kind == "setting" and value.strip():
            settings.add(value.strip().lower())
    return RestoreFacts(result.exit_code, result.stderr, client, server, frozenset(settings))


def server_facts(run, container: Container, argv: tuple[str, ...], env) -> RestoreFacts:
    """The server's version and parameter names and the container's psql version, from one psql
    session with ``argv`` (a psql reading a script on the maintenance database); asked once per run
    and container: the version check, the guard's settings and its restrict mode share it. When a
    StartServerFacts asked already, its answer is awaited (and its error raised here)."""
    cache = run.__dict__.setdefault("_restore_facts", {})
    key = (container.id, tuple(argv), tuple(env))
    found = cache.get(key)
    if isinstance(found, tuple):  # asked in the background (StartServerFacts)
        thread, answer = found
        thread.join()
        del cache[key]
        if "error" in answer:
            raise answer["error"]
        cache[key] = answer["facts"]
    elif found is None:
        cache[key] = _ask_facts(run, container, argv, env)
    return cache[key]


@dataclass(frozen=True)
class StartServerFacts:
    """Ask the server's version and parameter names and psql's version (server_facts) in a thread,
    while the next steps run (db:import: the rights check, the clean-up and the temporary database's
    creation, a session of the admin connection); the version check and the restore's guard then
    take the answer. Read-only: nothing waits on it but them."""

    container: Container
    argv: tuple[str, ...]  # a psql reading a script on the maintenance database, as DB_USER
    env: tuple[tuple[str, str], ...]


@describe.register
def _describe_start(step: StartServerFacts) -> tuple[str, str]:
    return "version", (f"{step.container.name}: ask the server's version and parameters (and psql's version) in "
                       "the background, while the steps below run")


def _start(run, step: StartServerFacts) -> None:
    cache = run.__dict__.setdefault("_restore_facts", {})
    key = (step.container.id, tuple(step.argv), tuple(step.env))
    if key in cache:
        return
    answer: dict = {}

    def work() -> None:
        try:
            answer["facts"] = _ask_facts(run, step.container, step.argv, step.env)
        except BaseException as exc:  # a DockerError: raised where the answer is taken
            answer["error"] = exc

    thread = threading.Thread(target=work, daemon=True, name="kompose-server-facts")
    thread.start()
    cache[key] = (thread, answer)


def server_settings(run, step: Exec) -> frozenset[str] | None:
    """The names of the server's parameters, asked with the Exec step's ``settings_argv`` (None when
    it has none): the restore guard leaves out a dump's SET of any other (dumps/compat.left_out)."""
    if not step.settings_argv:
        return None
    facts = server_facts(run, step.container, step.settings_argv, step.env)
    if facts.exit_code != 0:
        raise KomposeError(run.engine.failure_message("psql (the server's parameters)", facts.exit_code,
                                                      facts.stderr, own_script=True))
    return facts.settings


def report(run, scan) -> None:
    """Say what the guard left out for dumps kompose.sh restored: unknown SET parameters (a warning), OWNER TO."""
    if scan.skipped_settings:
        names = ", ".join(sorted(set(scan.skipped_settings)))
        text = f"left out the dump's SET of parameters this server does not know: {names}"
        run.console.warn(text)
        run.outcome.notes.append(text)
    if scan.owners_skipped:
        run.console.detail(f"--no-owner: {scan.owners_skipped} ALTER … OWNER TO statements left out; the objects "
                           "belong to DB_USER", "dim")


STEPS = {CheckDumpNeeds: _run, StartServerFacts: _start}
