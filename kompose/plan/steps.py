"""The step kinds of a plan: frozen data that says what will run (nothing here runs)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Union



@dataclass(frozen=True)
class Container:
    """The container a database tool runs in, and why it was chosen."""

    id: str
    name: str
    image: str
    reason: str
    # the exact image (sha256:…) the container runs: a helper made from it has the same pg_dump
    image_id: str = ""
    # "host:port": a database outside Docker; the container is a short-lived tools container
    # (run/tools.py) on the host's network that connects there
    network: str = ""
    # the database server it runs, as its image and environment say ("postgres", "mariadb",
    # "mysql"; "" when they do not say): a stack without DB_ENGINE gets this one
    engine: str = ""
    # the superuser the image creates (POSTGRES_USER, else postgres): kompose's admin connection
    # over the container's unix socket when DB_ADMIN_USER is not set (docs/reliability.md)
    superuser: str = ""


@dataclass(frozen=True)
class Note:
    text: str


class HookStep:
    """The base of every hook kind's step; each kind (kompose/hooks/kinds/) defines its own frozen
    dataclass with at least ``point`` and ``timeout``, and says in a few words what it does."""

    kind: ClassVar[str] = ""

    def what(self) -> str:
        """'bash hook_pre_up up -d', 'http GET https://…' (secrets masked): the plan's line."""
        raise NotImplementedError

    def label(self) -> str:
        """A short name for KOMPOSE_FAILED_STEP and messages: the function, the .env key, the directory."""
        raise NotImplementedError




@dataclass(frozen=True)
class Compose:
    """``docker compose …`` in the stack directory. ``stdin``: "none" (/dev/null), "inherit"
    (kompose's stdin; output through kompose, masked) or "terminal" (stdin, stdout and stderr
    are kompose's terminal, handed to compose as they are)."""

    argv: tuple[str, ...]
    stdin: str = "none"


@dataclass(frozen=True)
class Network:
    """Create the shared Docker network ``name`` unless it exists (stacks declare it external)."""

    name: str


@dataclass(frozen=True)
class Exec:
    """A program run inside a container; stdin/stdout may stream from/to host files."""

    container: Container
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    stdin_file: Path | None = None
    stdout_file: Path | None = None
    what: str = ""
    # the host file is compressed: kompose (de)compresses the stream on the host
    host_codec: str = ""
    host_level: int = 0
    # with the guard: the server's parameters are listed by this psql first and the guard leaves
    # out the dump's SET of any other; no_owner: its ALTER … OWNER TO too (the objects stay DB_USER's)
    settings_argv: tuple[str, ...] = ()
    no_owner: bool = False
    # stdin is a plain dump for psql: read through dumps.plain_sql's guard (database-level
    # statements and \connect neutralised, other meta-commands refused, COPY rows counted)
    guard: bool = False


@dataclass(frozen=True)
class DumpInHelper:
    """pg_dump in a short-lived helper container that writes the dump file itself.

    The helper runs the database container's own image (the same pg_dump), in that
    container's network namespace (127.0.0.1 is the server) with one file of ``directory``
    bind-mounted under HELPER_MOUNT (the pipe, else ``output``), as ``user`` (so the file is
    owned as if kompose wrote it). ``argv`` ends with ``--file=HELPER_MOUNT/<output.name>``
    (or the pipe's name); the password is in ``env``, never argv.
    The helper is removed afterwards, whatever happens.
    """

    container: Container
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    directory: Path
    output: Path
    user: str
    what: str = ""
    # a plain dump (gzipped or not) is written in one sequential pass: pg_dump writes it into
    # this named pipe in the stack directory, and kompose copies the pipe into ``output`` in
    # 1 MiB writes, hashing it on the way (no second read for the manifest, and far cheaper
    # writes than pg_dump's 4 KiB ones). A custom archive is rewritten in place at the end:
    # no pipe, pg_dump writes ``output`` itself.
    pipe: Path | None = None


@dataclass(frozen=True)
class RemoveHelpers:
    """Remove helper containers a killed run left for ``directory`` (found by label when the step runs)."""

    directory: Path
    reason: str


HELPER_MOUNT = "/kompose-dump"


@dataclass(frozen=True)
class Sql:
    """A psql script run in the container; values travel as psql variables (-v), never pasted."""

    container: Container
    database: str
    script: str
    variables: tuple[tuple[str, str], ...]
    env: tuple[tuple[str, str], ...]
    what: str
    argv: tuple[str, ...] = ()
    # a failure is reported and the plan goes on (housekeeping the operation does not need)
    optional: bool = False
    # added to the error when psql cannot connect (exit 2): what to set so that it can
    hint: str = ""
    # a file saying the live database may be refusing connections (kompose status reads it):
    # written before the script runs when ``closes``, removed once a script with ``mark`` succeeded
    mark: Path | None = None
    closes: bool = False
    # started in the container and not waited for (a detached exec: ``argv`` holds the whole
    # script as --command arguments, ``script`` is what the plan shows); for work after the last
    # step that matters, which the next command's RECOVER finishes when it did not
    background: bool = False
    # its psql is started (and connects) while the step before it runs, and gets the script when
    # this step runs (the swap after the restored-table check, no hook between)
    opened_early: bool = False


@dataclass(frozen=True)
class CheckDump:
    path: Path
    format: str
    compression: str = ""


@dataclass(frozen=True)
class VerifyDump:
    """Check a dump's structure (plain: header and end marker, decompressed; custom: pg_restore
    in ``container``) and, with ``checksum``, its sha256 against its manifest."""

    path: Path
    format: str
    compression: str = ""
    container: Container | None = None
    checksum: bool = False
    thorough: bool = False  # custom: read every entry (pg_restore -f /dev/null), not just the table of contents


@dataclass(frozen=True)
class CheckRestored:
    """After a restore into ``database``: every table the dump holds data for is there (plain:
    its COPY blocks, as the restore streamed them; custom: TABLE DATA entries of its table of
    contents); with ``counts``, with as many rows as the dump holds and its manifest records."""

    container: Container
    database: str
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    dump: Path
    format: str
    counts: bool = False
    # a script of the same session run after the check (the ANALYZE before the swap), and what it does
    then: str = ""
    then_what: str = ""
    # its psql session is started (and connects) when the restore before it starts, and waits for
    # the script until this step runs: the exec's start and the connection are off the critical path
    opened_early: bool = False


@dataclass(frozen=True)
class VerifyDumps:
    """Verify several dumps, each reported; fails at the end when any failed."""

    items: tuple[VerifyDump, ...]


@dataclass(frozen=True)
class CheckChecksum:
    """Refuse a dump whose sha256 differs from its manifest (``force``: warn instead); after a
    StartChecksum of the same file, take the sha256 it computed in the background."""

    path: Path
    force: bool = False
    started: bool = False


@dataclass(frozen=True)
class StartChecksum:
    """Start computing a dump's sha256 in the background; a later CheckChecksum compares it."""

    path: Path


@dataclass(frozen=True)
class CheckServerVersion:
    """Warn when the server is of an older major version than the dump (never fails)."""

    container: Container
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    dump: Path
    format: str
    compression: str = ""


@dataclass(frozen=True)
class WriteManifest:
    """Write ``<dump>.json`` (temp, fsync, rename) from what this run learned about the dump."""

    dump: Path
    stack: str
    database: str
    format: str
    compression: str
    container: Container
    source: Path | None = None  # the file as it is now (the .partial), when not yet renamed to ``dump``


@dataclass(frozen=True)
class Retention:
    """What db:cleanup decided, one line per dump: (file, keep?, rule, health)."""

    policy: str
    decisions: tuple[tuple[str, bool, str, str], ...]


@dataclass(frozen=True)
class RemoveOrphans:
    """Remove manifests whose dump is gone, checked when the step runs (under the stack's lock)."""

    directory: Path
    database: str


@dataclass(frozen=True)
class CountRows:
    """Count the rows of every table of a database; the counts go into the stack's result."""

    container: Container
    database: str
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    script: str


@dataclass(frozen=True)
class RecordDrill:
    """Write the drill's result to ``state_file`` (read by kompose status)."""

    state_file: Path
    dump: Path


@dataclass(frozen=True)
class Rename:
    """fsync ``src`` and rename it to ``dst`` (atomic on one filesystem)."""

    src: Path
    dst: Path


@dataclass(frozen=True)
class Remove:
    paths: tuple[Path, ...]
    reason: str = ""


@dataclass(frozen=True)
class RemoveStale:
    """Remove leftovers a killed run may have left, matched when the step runs."""

    directory: Path
    glob: str
    reason: str


# every step kind defined here; hook kinds are HookStep subclasses in kompose/hooks/kinds/,
# other rooms may define more (each with a renderer in plan/render.py and a handler in run/handlers/)
CORE_STEPS = (
    Note, Compose, Network, Exec, DumpInHelper, RemoveHelpers, Sql, CheckDump, Rename, Remove, RemoveStale,
    VerifyDump, VerifyDumps, CheckChecksum, StartChecksum, CheckServerVersion, WriteManifest, Retention,
    RemoveOrphans, CountRows, RecordDrill, CheckRestored,
)
Step = Union[HookStep, Note, Compose, Network, Exec, DumpInHelper, RemoveHelpers, Sql, CheckDump, Rename, Remove,
             RemoveStale, VerifyDump, VerifyDumps, CheckChecksum, StartChecksum, CheckServerVersion, WriteManifest,
             Retention, RemoveOrphans, CountRows, RecordDrill, CheckRestored]
