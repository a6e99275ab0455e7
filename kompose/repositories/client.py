"""Running restic against one repository: through the one host-process runner, with the
repository and its password in restic's environment (never argv), failures turned into one
line that names the repository (masked) and restic's reason."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping, Sequence

from kompose.host import processes
from kompose.repositories import restic
from kompose.repositories.restic import Repository, RepositoryError

LineSink = Callable[[str], None]


class Client:
    """restic for one repository, with the stack's layered environment."""

    def __init__(self, repository: Repository, env: Mapping[str, str], cwd: Path,
                 sink: LineSink | None = None, timeout: float | None = None):
        self.repository = repository
        self.env = restic.environment(env, repository)
        self.cwd = cwd
        self.sink = sink
        self.timeout = timeout

    def run(self, argv: Sequence[str], what: str, cwd: Path | None = None, show: bool = False,
            input: bytes | None = None) -> str:
        """Run one restic command; returns its stdout. stderr goes to the sink when ``show``.

        Raises RepositoryError (repository, what, restic's reason) when it fails.
        """
        binary = restic.program()
        result = processes.run_captured(
            [binary, *argv[1:]], input=input, timeout=self.timeout, what=f"restic {argv[1]}", env=self.env,
            cwd=cwd or self.cwd,
        )
        if show and self.sink:
            for line in result.stderr.splitlines():
                self.sink(line)
        if result.exit_code != 0:
            raise _error(self.repository, what, result)
        return result.stdout

    def start(self, argv: Sequence[str], stdin: bool = False, stdout: bool = False,
              cwd: Path | None = None, into: int | None = None) -> processes.Streaming:
        """Start restic (with a pipe kompose streams through: its stdin or its stdout, when asked;
        ``into``: a file descriptor its stdout writes to)."""
        return processes.Streaming([restic.program(), *argv[1:]], f"restic {argv[1]}", env=self.env,
                                   cwd=cwd or self.cwd, stdin=stdin, stdout=stdout, into=into)

    def finish(self, process: processes.Streaming, what: str) -> str:
        """Wait for a started restic; its stdout (when not a pipe). Raises RepositoryError when it failed."""
        result = process.wait()
        if result.exit_code != 0:
            raise _error(self.repository, what, result)
        return result.stdout

    def snapshots(self, tags: Sequence[str], *more: Sequence[str]) -> list[restic.Snapshot]:
        output = self.run(restic.snapshots_argv(tags, *more), "listing the copies")
        try:
            return restic.parse_snapshots(output)
        except ValueError as exc:
            raise RepositoryError(f"repository {self.repository}: cannot read restic's snapshot list ({exc})") from None

    def everything(self, stack: str, database: str) -> list[restic.Snapshot]:
        """The database's copies, streamed copies' manifest snapshots and partial streams: one restic call."""
        return self.snapshots(*restic.all_kinds_tags(stack, database))

    def copies(self, stack: str, database: str) -> list[restic.Snapshot]:
        """The copies kompose counts (a streamed one paired with its manifest snapshot), oldest first."""
        return restic.with_manifests(self.everything(stack, database))


def _error(repository: Repository, what: str, result) -> RepositoryError:
    output = result.stderr or result.stdout
    kind = restic.LockedError if restic.locked(output) else RepositoryError
    return kind(f"repository {repository}: {what} failed: {restic.reason(output)}")


def newest_copy(env: Mapping[str, str], cwd: Path, urls: Sequence[str], stack: str, database: str,
                snapshot: str | None = None, warn: LineSink | None = None,
                listed: dict | None = None) -> tuple[restic.Snapshot, str]:
    """The newest copy of the stack's database across ``urls`` (or the snapshot whose id starts
    with ``snapshot``), and the repository holding it (``listed``, when given, gets each
    repository's copies). A repository that cannot be read is
    passed to ``warn`` while another has the copy; RepositoryError when none has it."""
    found: list[tuple[restic.Snapshot, str]] = []
    problems: list[str] = []
    for url in urls:
        try:
            snapshots = Client(Repository(url), env, cwd).copies(stack, database)
        except RepositoryError as exc:
            problems.append(exc.message)
            if warn:
                warn(exc.message)
            continue
        found += [(s, url) for s in snapshots if s.dump_name]
        if listed is not None:
            listed[url] = snapshots
    if snapshot:
        found = [(s, url) for s, url in found if s.id.startswith(snapshot)]
    if not found:
        what = f"snapshot {snapshot}" if snapshot else f"no copy of {stack}/{database}"
        raise RepositoryError(f"{what} not found in the repositories" + (f" ({'; '.join(problems)})" if problems else ""))
    return max(found, key=lambda pair: pair[0].sort_key)
