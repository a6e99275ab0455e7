"""The restic repository steps: push a dump, pull a copy back, apply retention in a repository —
each a frozen dataclass, its renderer (registered on plan.render.describe) and its handler
``handler(run: StackRun, step)``; STEPS maps them (one line in run/handlers.STEP_MODULES).

``repository`` holds the repository string as configured (it may carry a password): it is
shown masked (env.mask_url_password) in text and JSON, and reaches restic only in
RESTIC_REPOSITORY.

A copy that fails is recorded, with one line naming the repository (masked) and restic's
reason, and the next repository still gets its copy; the CopiesDone step then fails the
stack. The local dump is never touched by any of this.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from kompose.dumps import files as dumps
from kompose.dumps import manifest
from kompose.dumps import retention
from kompose.dumps import verify
from kompose import __version__
from kompose.errors import DumpError, KomposeError
from kompose.host import files as host_files
from kompose.env import mask_url_password
from kompose.plan.render import describe, describe_hook
from kompose.plan.steps import Container
from kompose.run.dump_steps import now_iso
from kompose.repositories import restic
from kompose.repositories import state as copy_state
from kompose.repositories.client import Client, newest_copy
from kompose.repositories.restic import Repository, RepositoryError

PULL_DIR_PREFIX = ".kompose-pull-"
MARIADB_BANNER_BYTES = 64  # enough for mariadb-dump's first line (as dumps/codecs.py reads it)
PULL_DIR_SUFFIX = ".partial"


@dataclass(frozen=True)
class PushCopy:
    """Copy a dump and its manifest into one restic repository as one snapshot, tagged with the
    stack, the database, the dump's timestamp and its sha256 (read from the manifest when it runs).

    A failure is recorded, not raised, so the other repositories still get their copy; a
    CopiesDone step later fails the stack. ``pre``/``post``: the pre_db_push / post_db_push hooks.
    """

    repository: str
    dump: Path
    stack: str
    database: str
    skip_existing: bool = False  # db:push: a repository that holds this dump already is left alone
    init: bool = False  # db:push --init: create the repository when there is none
    pre: tuple = ()
    post: tuple = ()


@dataclass(frozen=True)
class PullCopy:
    """Bring a copy back from the repositories: the newest of the stack's database (or ``snapshot``),
    streamed by restic dump into ``<dump>.partial`` in ``directory`` and hashed as it is written, its
    sha256 checked against its manifest and its tag, then renamed (manifest first)."""

    repositories: tuple[str, ...]
    directory: Path
    stack: str
    database: str
    snapshot: str | None = None


@dataclass(frozen=True)
class ForgetCopies:
    """Apply the retention policy to the stack's copies in one repository (decided when it runs,
    from the repository's snapshots), then forget exactly those snapshots and prune."""

    repository: str
    stack: str
    database: str
    policy: str  # as the plan shows it
    counts: tuple[tuple[str, int], ...]  # retention.Policy's (rule, count) pairs

    def retention_policy(self) -> retention.Policy:
        return retention.Policy(**dict(self.counts))


@dataclass(frozen=True)
class CheckRepository:
    """restic check of one repository: its structure, and ``subset`` of its data read back
    (``--read-data-subset``: "5%", "1/10", "500M"; empty: the structure only)."""

    repository: str
    subset: str = ""


@dataclass(frozen=True)
class RemoveScratch:
    """Remove a directory kompose made for a pulled copy (db:drill --from-repository), with all in it."""

    directory: Path


@dataclass(frozen=True)
class StreamDump:
    """KOMPOSE_LOCAL_DUMPS=no: the dump tool's output streamed straight into every repository, one
    ``restic backup --stdin`` per repository fed from the one stream (one dump, the same bytes
    everywhere), with the checks a local dump gets done in flight: its sha256, the rows per table
    (pg_dump's COPY rows, mariadb-dump's INSERT rows), the tool's header and end-of-dump marker,
    the tool's exit status.

    Each copy is written tagged ``kompose-partial`` (never counted: every listing filters on
    ``kompose``). When a check fails the restic processes are killed before they read the end of
    their input (so they write no snapshot; one that did anyway is forgotten). When all pass: the
    manifest goes into a small snapshot of its own (tagged ``kompose-manifest``: its sha256 is only
    known after the stream), then the copy's tags become kompose's usual ones (restic tag).
    ``hooks``: (pre, post) db_push hooks per repository.
    """

    container: Container
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    repositories: tuple[str, ...]
    directory: Path
    name: str  # the dump's name in the repositories
    stack: str
    database: str
    what: str = ""
    hooks: tuple = ()  # RepositoryHooks, one per repository


@dataclass(frozen=True)
class RepositoryHooks:
    """The pre/post_db_push hooks of one repository a stream goes into."""

    repository: str
    pre: tuple = ()
    post: tuple = ()


@dataclass(frozen=True)
class CopiesDone:
    """Fail the stack when a copy step above failed (each failure is one line of its error)."""

    what: str = "copy"


# ------------------------------------------------------------------ rendering


@describe.register
def _push_copy(step: PushCopy) -> tuple[str, str]:
    text = (f"{step.dump.name} and its manifest -> {mask_url_password(step.repository)} (restic backup: one snapshot "
            f"tagged kompose stack:{step.stack} db:{step.database} time:<the dump's> sha256:<the manifest's>"
            + (", unless the repository has this dump" if step.skip_existing else "") + ")")
    if step.skip_existing:
        text += "\n  the dump's sha256 is checked against its manifest as restic reads it; a copy that fails is forgotten"
    if step.init:
        text += "\n  restic init first when it is not a repository yet"
    text += "".join(f"\n  pre: {describe_hook(h)}" for h in step.pre)
    text += "".join(f"\n  post: {describe_hook(h)}" for h in step.post)
    return "copy", text


@describe.register
def _pull_copy(step: PullCopy) -> tuple[str, str]:
    which = f"snapshot {step.snapshot}" if step.snapshot else f"the newest copy of {step.database}"
    where = ", ".join(mask_url_password(r) for r in step.repositories)
    return "pull", (f"{which} (stack:{step.stack}) from {where} -> {step.directory}/ (restic dump into "
                    "<dump>.partial, hashed as it is written, fsync; sha256 against its manifest and tag; manifest, "
                    "then dump renamed into place)")


@describe.register
def _forget_copies(step: ForgetCopies) -> tuple[str, str]:
    return "forget", (f"{mask_url_password(step.repository)}: copies tagged stack:{step.stack} db:{step.database}, "
                      f"policy {step.policy} (decided from the repository's snapshots when it runs; the newest "
                      "verified copy always stays), then restic forget --prune")


@describe.register
def _check_repository(step: CheckRepository) -> tuple[str, str]:
    data = f", reading {step.subset} of the data back" if step.subset else ""
    return "check", f"{mask_url_password(step.repository)}: restic check (structure, index, packs{data})"


@describe.register
def _remove_scratch(step: RemoveScratch) -> tuple[str, str]:
    return "remove", f"{step.directory}/ and the copy pulled into it"


@describe.register
def _stream_dump(step: StreamDump) -> tuple[str, str]:
    where = ", ".join(mask_url_password(r) for r in step.repositories)
    text = (f"{step.what or step.argv[0]} in {step.container.name}, streamed as {step.name} into {where} (no local "
            f"dump: restic backup --stdin, one process per repository fed from the one stream; tagged "
            f"kompose-partial stack:{step.stack} db:{step.database} time:<the dump's>, not counted until it passes)"
            "\n  in flight: sha256, rows per table (COPY or INSERT), the dump's header and end-of-dump marker, the "
            "tool's exit status"
            "\n  all pass: the manifest as its own snapshot (kompose-manifest), then the copy tagged kompose sha256:… "
            "size:… verified; a check fails: restic killed before the end of its input, any snapshot it wrote "
            "forgotten"
            "\n  first: partial streams an interrupted export left in these repositories are forgotten")
    for hooks in step.hooks:
        text += "\n" + _repository_hooks(hooks)[1].replace("\n", "\n  ") if hooks.pre or hooks.post else ""
    return "stream", text


@describe.register
def _repository_hooks(step: RepositoryHooks) -> tuple[str, str]:
    text = f"  hooks of {mask_url_password(step.repository)}:"
    text += "".join(f"\n  pre: {describe_hook(h)}" for h in step.pre)
    text += "".join(f"\n  post: {describe_hook(h)}" for h in step.post)
    return "hooks", text


@describe.register
def _copies_done(step: CopiesDone) -> tuple[str, str]:
    return "check", f"every {step.what} above succeeded (else the stack fails; the local dumps stay)"


# ------------------------------------------------------------------- handlers


def _copy_failures(run) -> list[str]:
    """The copies that failed in this run so far (the outcome's JSON shows them too)."""
    return run.outcome.details.setdefault("copy_failures", [])


def _client(run, url: str) -> Client:
    return Client(Repository(url), run.plan.env, run.plan.directory,
                  sink=lambda line: run.console.stream_line("", line))


def _failed_copy(run, message: str) -> None:
    """Record a repository's failure; CopiesDone reports them all, once, as the stack's error."""
    _copy_failures(run).append(message)


# -- push


def push_copy(run, step: PushCopy) -> None:
    repository = Repository(step.repository)
    try:
        for hook in step.pre:
            run.hooks.run(hook, {"KOMPOSE_STATUS": "running"})
        try:
            snapshot = _push(run, step, repository)
        except restic.LockedError as exc:
            _remove_stale_locks(run, _client(run, step.repository), exc)
            snapshot = _push(run, step, repository)
        for hook in step.post:
            run.hooks.run(hook, {"KOMPOSE_STATUS": "ok"})
    except RepositoryError as exc:
        _failed_copy(run, exc.message)
        return
    except KomposeError as exc:  # a push hook failed: this repository gets no copy, the others do
        _failed_copy(run, f"repository {repository}: {exc.message}")
        return
    except OSError as exc:
        _failed_copy(run, f"repository {repository}: cannot copy {step.dump.name}: {exc.strerror or exc}")
        return
    copies = run.outcome.details.setdefault("copies", [])
    copies.append({"repository": repository.masked, "snapshot": snapshot, "dump": step.dump.name})
    parsed = dumps.parse(step.dump)
    if parsed:  # for status and cron --check, which never ask the repositories
        copy_state.record(step.dump.parent, repository.masked, step.dump.name, parsed.timestamp, snapshot,
                          datetime.now().astimezone().isoformat(timespec="seconds"))


def _remove_stale_locks(run, client: Client, exc: restic.LockedError) -> None:
    """A killed restic's lock (its process gone: stale) blocked this one: restic unlock removes
    stale locks only, so a live restic's lock stays and the one more try says so."""
    client.run(restic.unlock_argv(), "removing stale locks")
    run.console.detail(f"{client.repository} was locked ({exc.message.split(' failed: ', 1)[-1]}); removed stale "
                       "locks, trying once more", "yellow")


def _push(run, step: PushCopy, repository: Repository) -> str:
    dump = step.dump
    if not dump.is_file():
        raise DumpError(f"{dump.name} does not exist")
    found = manifest.read(dump)
    facts = run.files.setdefault(dump, {})
    if found and facts.get("sha256") and facts.get("bytes") == dump.stat().st_size and facts["sha256"] != found.sha256:
        raise DumpError(f"{dump.name}: its sha256 differs from its manifest; not copied")
    if not found and not facts.get("sha256"):
        facts.update(sha256=manifest.sha256_file(dump), bytes=dump.stat().st_size)
    sha = found.sha256 if found else facts["sha256"]
    verified = bool(found and found.verification.ok)
    client = _client(run, step.repository)
    if step.init:
        _init_if_missing(run, client)
    parsed = dumps.parse(dump)
    when = parsed.timestamp if parsed else datetime.fromtimestamp(dump.stat().st_mtime)
    tags = restic.dump_tags(step.stack, step.database, when, sha, verified, dump.stat().st_size)
    files = [dump.name] + ([manifest.path_of(dump).name] if found else [])
    # a dump this run did not hash (db:push) is hashed while restic reads it: the same bytes
    # from the page cache, on the other core; a copy whose dump fails the check is forgotten again
    hasher = _Sha256(dump) if not facts.get("sha256") else None
    # db:push asks whether the repository has this dump already while restic starts the backup
    # (both open the repository at once); when it has, the backup is killed before its end,
    # which writes no snapshot
    backup = client.start(restic.backup_argv(files, tags), cwd=dump.parent)
    try:
        if step.skip_existing:
            there = client.snapshots(restic.stack_tags(step.stack, step.database) + (f"sha256:{sha}",))
            if any(s.dump_name == dump.name for s in there):
                ended = backup.kill()
                done = restic.snapshot_id_of_backup(ended.stdout) if ended.exit_code == 0 else None
                if done:  # it finished first: a second snapshot of the same dump, forgotten again
                    client.run(restic.forget_argv([done], prune=False), "forgetting the second copy")
                client.run(restic.unlock_argv(), "removing the killed backup's lock")
                run.console.detail(f"{repository} has {dump.name} already (snapshot {there[-1].short_id})", "dim")
                if hasher:
                    hasher.result()
                return there[-1].short_id
        run.console.detail(f"copying {dump.name} to {repository}", "blue")
        output = client.finish(backup, "restic backup")
    except BaseException:
        backup.kill()
        raise
    finally:
        actual = hasher.result() if hasher else None
    snapshot = restic.snapshot_id_of_backup(output) or "?"
    if actual is not None:
        facts.update(sha256=actual, bytes=dump.stat().st_size)
        if actual != sha:
            client.run(restic.forget_argv([snapshot], prune=False), "forgetting the bad copy")
            raise DumpError(f"{dump.name}: sha256 {actual[:16]}… differs from its manifest's {sha[:16]}…; "
                            "the copy was forgotten again")
    run.console.detail(f"{repository}: snapshot {snapshot}" + ("" if verified else " (not verified: no good manifest)"),
                       "dim")
    return snapshot


class _Sha256:
    """A file's sha256, computed on a thread (hashlib releases the GIL on big updates)."""

    def __init__(self, path: Path):
        self._value: str | None = None
        self._error: OSError | None = None
        self._thread = threading.Thread(target=self._run, args=(path,), daemon=True)
        self._thread.start()

    def _run(self, path: Path) -> None:
        try:
            self._value = manifest.sha256_file(path)
        except OSError as exc:
            self._error = exc

    def result(self) -> str:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value or ""


def _init_if_missing(run, client: Client) -> None:
    try:
        client.run(restic.cat_config_argv(), "opening the repository")
    except RepositoryError as exc:
        if "Is there a repository" not in exc.message and "no such file" not in exc.message \
                and "does not exist" not in exc.message:
            raise
        client.run(restic.init_argv(), "restic init")
        run.console.detail(f"created the restic repository {client.repository}", "yellow")


def copies_done(run, step: CopiesDone) -> None:
    failures = _copy_failures(run)
    if failures:
        message = "; ".join(failures)
        failures.clear()
        raise RepositoryError(message)


# -- pull


def pull_copy(run, step: PullCopy) -> None:
    host_files.make_private_dir(step.directory)
    for leftover in step.directory.glob(f"{PULL_DIR_PREFIX}*{PULL_DIR_SUFFIX}"):  # an older kompose's pull
        shutil.rmtree(leftover, ignore_errors=True)
        run.console.detail(f"removed {leftover.name} (left by an interrupted pull)", "yellow")
    snapshot, url = newest_copy(run.plan.env, run.plan.directory, step.repositories, step.stack, step.database,
                                step.snapshot, warn=run.console.warn)
    client = _client(run, url)
    try:
        _pull(run, step, snapshot, client)
    except restic.LockedError as exc:
        _remove_stale_locks(run, client, exc)
        _pull(run, step, snapshot, client)


class _Fetch:
    """A small restic call (the manifest's dump) on a thread, beside the dump's own restic."""

    def __init__(self, client: Client, argv: tuple[str, ...], what: str):
        self.text: str | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(client, argv, what), daemon=True)
        self._thread.start()

    def _run(self, client: Client, argv: tuple[str, ...], what: str) -> None:
        try:
            self.text = client.run(argv, what)
        except BaseException as exc:  # noqa: BLE001 - raised again in result()
            self.error = exc

    def result(self) -> str:
        self._thread.join()
        if self.error is not None:
            raise self.error
        return self.text or ""


def _pull(run, step: PullCopy, snapshot: restic.Snapshot, client: Client) -> None:
    """``restic dump SNAPSHOT /DUMP`` writes straight into ``<dump>.partial`` in the dump directory (the
    same writes as ``restic dump > file`` by hand); kompose follows the file as it grows, hashing the
    bytes just written (from the page cache, on the other core) and starting their write-back, while
    the manifest comes out of the repository beside it. Then fsync, the sha256 against the manifest's
    and the snapshot's tag, the manifest and then the dump renamed into place. A failure, a mismatch,
    Ctrl-C: the partial files are removed; a killed kompose leaves only ``.partial`` names, which
    nothing counts and the next pull or export removes."""
    from kompose.host.copier import _Writeback

    name = snapshot.dump_name
    final = step.directory / name
    partial = final.with_name(name + dumps.PARTIAL_SUFFIX)
    manifest_final = manifest.path_of(final)
    manifest_partial = manifest_final.with_name(manifest_final.name + dumps.PARTIAL_SUFFIX)
    for leftover in (partial, manifest_partial):
        if leftover.exists() or leftover.is_symlink():
            leftover.unlink()
            run.console.detail(f"removed {leftover.name} (left by an interrupted pull)", "yellow")
    if final.exists():
        sha = manifest.sha256_file(final)
        if snapshot.sha256 and sha == snapshot.sha256:
            run.console.detail(f"{name} is here already, with the same sha256", "dim")
            _pulled(run, final, snapshot, client, sha)
            return
        raise DumpError(f"{final} exists with other contents; not overwritten")
    run.console.detail(f"pulling {name} (snapshot {snapshot.short_id}) from {client.repository}", "blue")
    fetch = None
    if snapshot.manifest_name:  # a streamed copy's manifest is in a small snapshot of its own
        fetch = _Fetch(client, restic.dump_argv(snapshot.manifest_snapshot or snapshot.id, snapshot.manifest_name),
                       "restic dump (the manifest)")
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, host_files.DUMP_MODE)
        try:
            sha = _dump_into(run, client, snapshot, name, partial, fd, _Writeback(partial, hashing=True))
            os.fsync(fd)
        finally:
            os.close(fd)
        text = fetch.result() if fetch else None
        expected, mtime_ns = snapshot.sha256, None
        if text is not None:
            try:
                fields = json.loads(text)
                expected, mtime_ns = fields["sha256"], fields.get("mtime_ns")
            except (ValueError, KeyError, TypeError, AttributeError):
                raise DumpError(f"{snapshot.manifest_name} from {client.repository} (snapshot {snapshot.short_id}) "
                                "is not a kompose manifest; not pulled") from None
        if not expected or sha != expected or (snapshot.sha256 and snapshot.sha256 != expected):
            raise DumpError(f"{name} from {client.repository} (snapshot {snapshot.short_id}): sha256 {sha[:16]}… "
                            f"differs from its manifest ({(expected or 'none')[:16]}…); not pulled")
        if isinstance(mtime_ns, int) and not isinstance(mtime_ns, bool):
            # the bytes are the manifest's (sha256 above): the file gets back the mtime its manifest
            # recorded, as restic restore would give it, so it counts as verified (manifest.health)
            os.utime(partial, ns=(mtime_ns, mtime_ns))
        if text is not None:  # a dump under its final name always has its manifest: the manifest first
            host_files.write_atomically(manifest_final, text, mode=host_files.DUMP_MODE, partial=manifest_partial)
        host_files.fsync_rename(partial, final)
    except BaseException:
        if fetch:
            fetch._thread.join(30)
        partial.unlink(missing_ok=True)
        manifest_partial.unlink(missing_ok=True)
        raise
    _pulled(run, final, snapshot, client, sha)


def _dump_into(run, client: Client, snapshot: restic.Snapshot, name: str, partial: Path, fd: int, follower) -> str:
    """restic dump of ``name`` into ``fd`` (the partial file), followed as it grows: its sha256."""
    import subprocess

    process = client.start(restic.dump_argv(snapshot.id, name), into=fd)
    bar = run.console.transfer(f"pull {name}", snapshot.size)
    try:
        while True:
            try:
                process.proc.wait(timeout=0.05)
                break
            except subprocess.TimeoutExpired:
                bar(follower.poll())
        client.finish(process, "restic dump")
        bar(follower.poll())
        sha = follower.finish()
    except BaseException:
        process.kill()
        raise
    finally:
        follower.close()
        bar.close()
    if partial.stat().st_size == 0 and snapshot.size:
        raise RepositoryError(f"repository {client.repository}: snapshot {snapshot.short_id} holds no {name}")
    return sha or manifest.sha256_file(partial)  # the follower could not read it: read it once more


def _pulled(run, final: Path, snapshot: restic.Snapshot, client: Client, sha: str) -> None:
    run.outcome.file = str(final)
    run.outcome.bytes = final.stat().st_size
    run.outcome.details.update(snapshot=snapshot.id, repository=client.repository.masked, sha256=sha)
    run.console.detail(f"sha256 {sha[:16]}… matches its manifest; db:import {final.name} restores it", "dim")


# -- retention


def forget_copies(run, step: ForgetCopies) -> None:
    repository = Repository(step.repository)
    client = _client(run, step.repository)
    try:
        client.run(restic.unlock_argv(), "removing stale locks")
        everything = client.everything(step.stack, step.database)
        snapshots = restic.with_manifests(everything)
        items = [retention.Item(s.id, s.dump_time or _restic_time(s.time), good=s.verified) for s in snapshots]
        decisions = retention.decide(items, step.retention_policy())
        by_id = {s.id: s for s in snapshots}
        rows = []
        for decision in decisions:
            snap = by_id[decision.item.name]
            health = "verified" if snap.verified else "not verified"
            run.console.detail(f"{'keep  ' if decision.keep else 'forget'}  {repository} {snap.short_id} "
                                f"{snap.dump_name or '?'}  ({decision.rule}; {health})",
                                "dim" if decision.keep else "yellow")
            rows.append({"repository": repository.masked, "snapshot": snap.short_id, "dump": snap.dump_name,
                         "keep": decision.keep, "rule": decision.rule, "health": health})
        run.outcome.details.setdefault("copies", []).extend(rows)
        remove = [d.item.name for d in decisions if not d.keep]
        kept = {by_id[d.item.name].manifest_snapshot for d in decisions if d.keep}
        # a forgotten streamed copy's manifest snapshot goes with it; partial streams (a killed or
        # failed export's) and manifests whose copy never got its tags are never kept
        extra = [s.id for s in everything if s.kind in ("manifest", "partial") and s.id not in kept]
        if extra:
            run.console.detail(f"forget  {repository} {len(extra)} manifest snapshot(s) and partial stream(s) "
                               "of no kept copy", "yellow")
        remove += extra
        if remove:
            client.run(restic.forget_argv(remove), "restic forget --prune", show=False)
            run.console.detail(f"{repository}: forgot {len(remove)} snapshot(s) and pruned", "dim")
    except RepositoryError as exc:
        _failed_copy(run, exc.message)


def check_repository(run, step: CheckRepository) -> None:
    repository = Repository(step.repository)
    run.console.detail(f"checking {repository}" + (f" (reading {step.subset} of its data)" if step.subset else ""),
                       "blue")
    client = _client(run, step.repository)
    try:
        try:
            client.run(restic.check_argv(step.subset or None), "restic check")
        except restic.LockedError as exc:  # restic check locks exclusively: a killed push's lock stops it
            _remove_stale_locks(run, client, exc)
            client.run(restic.check_argv(step.subset or None), "restic check")
    except RepositoryError as exc:
        _failed_copy(run, exc.message)
        return
    run.outcome.details.setdefault("checked", []).append({"repository": repository.masked, "subset": step.subset})
    run.console.detail(f"{repository}: no errors", "dim")


def remove_scratch(run, step: RemoveScratch) -> None:
    shutil.rmtree(step.directory, ignore_errors=True)


def _restic_time(text: str) -> datetime:
    """restic's snapshot time (RFC 3339 with nanoseconds) as a naive local datetime."""
    head = text[:19]
    try:
        return datetime.strptime(head, "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return datetime.min


# -- streaming (KOMPOSE_LOCAL_DUMPS=no)


class _Target:
    """One repository a stream goes into: its client and its restic backup --stdin."""

    def __init__(self, client: Client, process, pre: tuple, post: tuple):
        self.client = client
        self.process = process
        self.pre = pre
        self.post = post
        self.broken: OSError | None = None


class _Tee:
    """The exec's stdout: every chunk to each live restic, hashed, its COPY rows counted, its first
    and last bytes kept for the header and end-marker checks. A repository whose restic stops
    reading is dropped (the others go on); with none left, the write fails and the dump stops."""

    def __init__(self, name: str, targets: list[_Target]):
        import hashlib

        from kompose.dumps.plain_sql import Scanner

        self.name = name
        self.targets = targets
        self.hash = hashlib.sha256()
        self.size = 0
        self.head = b""
        self.tail = b""
        self.counter: Scanner | None = Scanner(name, rewrite=False)
        self.inserts = None  # dumps.mariadb_rows.RowCounter, once the first bytes said mariadb-dump / mysqldump
        self.pending: bytes | None = b""  # the first bytes, until they say which dump this is

    def live(self) -> list[_Target]:
        return [t for t in self.targets if t.broken is None]

    def write(self, data: bytes) -> int:
        for target in self.live():
            try:
                target.process.stdin.write(data)
            except OSError as exc:
                target.broken = exc
        if not self.live():
            raise OSError(errno.EPIPE, "every repository's restic stopped reading")
        self.hash.update(data)
        self.size += len(data)
        if len(self.head) < verify.HEAD_BYTES:
            self.head += data[: verify.HEAD_BYTES - len(self.head)]
        self.tail = (self.tail + data[-verify.TAIL_BYTES:])[-verify.TAIL_BYTES:]
        self._count(data)
        return len(data)

    def _count(self, data: bytes, final: bool = False) -> None:
        """COPY rows (pg_dump) or INSERT rows (mariadb-dump, mysqldump: its banner, in the first bytes)."""
        if self.pending is not None:
            self.pending += data
            if len(self.pending) < MARIADB_BANNER_BYTES and not final:
                return
            data, self.pending = self.pending, None
            from kompose.engines.mariadb import sql as mariadb

            if mariadb.is_dump(data):
                from kompose.dumps.mariadb_rows import RowCounter

                self.counter, self.inserts = None, RowCounter()
        if self.inserts is not None:
            self.inserts.feed(bytes(data))
        elif self.counter is not None:
            try:
                self.counter.feed(data)
            except DumpError:
                self.counter = None

    def flush(self) -> None:
        for target in self.live():
            try:
                target.process.stdin.flush()
            except OSError as exc:
                target.broken = exc

    def rows(self) -> dict[str, int] | None:
        if self.pending is not None:
            self._count(b"", final=True)
        if self.inserts is not None:
            self.inserts.end()
            return dict(self.inserts.rows)
        if self.counter is None or self.counter.disabled:
            return None
        try:
            self.counter.end()
        except DumpError:
            return None
        return dict(self.counter.scan.rows)


def stream_dump(run, step: StreamDump) -> None:
    from kompose.docker import exec as docker_exec
    from kompose.errors import DatabaseError

    parsed = dumps.parse(Path(step.name))
    stamp = parsed.timestamp.strftime(restic.TIME_FORMAT)
    base = restic.stack_tags(step.stack, step.database)[1:] + (f"time:{stamp}",)
    targets: list[_Target] = []
    hooks = {h.repository: (h.pre, h.post) for h in step.hooks}
    for url in step.repositories:
        pre, post = hooks.get(url, ((), ()))
        client = _client(run, url)
        try:
            for hook in pre:
                run.hooks.run(hook, {"KOMPOSE_STATUS": "running"})
            _forget_partials(run, client, step.stack, step.database)
            targets.append(_Target(client, client.start(restic.stdin_backup_argv(step.name, (restic.PARTIAL_TAG,
                                                                                             *base)), stdin=True),
                                   pre, post))
        except KomposeError as exc:
            _failed_copy(run, exc.message if isinstance(exc, RepositoryError) else f"repository {client.repository}: "
                         f"{exc.message}")
    if not targets:
        raise RepositoryError("; ".join(_copy_failures(run)) or "no repository to stream into")
    run.console.detail(step.what + f" -> {', '.join(str(t.client.repository) for t in targets)}", "blue")
    tee = _Tee(step.name, targets)
    started, clock = now_iso(), time.time()
    progress = run.progress(step.what)
    try:
        result = docker_exec.container_exec(run.ctx.docker(), step.container.id, step.argv, dict(step.env),
                                            stdout=tee, on_progress=progress)
    except BaseException as exc:
        _kill_all(run, targets, step)
        if isinstance(exc, KomposeError) and not isinstance(exc, RepositoryError):
            run.check_container(step.container, clock, step.what or step.argv[0])
        raise
    finally:
        progress.close()
    problem = None
    if result.exit_code != 0:
        run.check_container(step.container, clock, step.what or step.argv[0], result)
        problem = run.engine.failure_message(step.argv[0], result.exit_code, result.stderr)
    structure = verify.check_plain_ends(tee.head, tee.tail) if tee.size else None
    if problem is None and (structure is None or not structure.ok):
        problem = f"{step.name} failed verification in flight: " + (structure.detail if structure else "empty")
    if problem:
        _kill_all(run, targets, step)
        raise (DatabaseError if result.exit_code else DumpError)(problem + "; no copy was kept in any repository")
    rows = tee.rows()
    sha = tee.hash.hexdigest()
    finished = now_iso()
    text = f"✓ {step.name}: {structure.detail}; sha256 {sha[:16]}…" + (
        f"; {sum(rows.values())} row(s) in {len(rows)} table(s)" if rows is not None else "")
    run.console.detail(text, "green")
    data = manifest.Manifest(
        file=step.name, format="plain", compression=None, size=tee.size, sha256=sha, database=step.database,
        stack=step.stack, server_version=structure.server_version, pg_dump_version=structure.pg_dump_version,
        container=step.container.name, image=step.container.image, started_at=started, finished_at=finished,
        kompose_version=__version__,
        verification=manifest.Verification(True, structure.method, structure.detail + " (checked in flight)",
                                           finished),
        rows=rows,
    )
    run.outcome.details.update(sha256=sha, bytes=tee.size, streamed=True)
    run.outcome.bytes = tee.size
    for target in targets:  # end of input: each restic writes its snapshot now
        try:
            snapshot = _finish_stream(run, target, step, data, base, parsed.timestamp)
        except KomposeError as exc:
            _failed_copy(run, exc.message if isinstance(exc, RepositoryError)
                         else f"repository {target.client.repository}: {exc.message}")
            continue
        run.outcome.details.setdefault("copies", []).append(
            {"repository": target.client.repository.masked, "snapshot": snapshot, "dump": step.name})


def _finish_stream(run, target: _Target, step: StreamDump, data: manifest.Manifest, base: tuple,
                   when: datetime) -> str:
    client = target.client
    if target.broken is not None:
        client.finish(target.process, "restic backup --stdin")  # its own reason, when it has one
        raise RepositoryError(f"repository {client.repository}: restic stopped reading the dump "
                              f"({target.broken.strerror or target.broken}); no copy")
    output = client.finish(target.process, "restic backup --stdin")
    partial = restic.snapshot_id_of_backup(output)
    if not partial:
        raise RepositoryError(f"repository {client.repository}: restic backup --stdin named no snapshot")
    client.run(restic.stdin_backup_argv(f"{step.name}.json", (restic.MANIFEST_TAG, *base, f"sha256:{data.sha256}")),
               "restic backup (the manifest)", input=data.to_json().encode())
    client.run(restic.retag_argv(partial, (restic.TAG, f"sha256:{data.sha256}", f"size:{data.size}",
                                           restic.VERIFIED_TAG), (restic.PARTIAL_TAG,)), "restic tag")
    snapshot = partial[:8]
    [counted] = [s for s in client.copies(step.stack, step.database) if s.sha256 == data.sha256
                 and s.dump_name == step.name][-1:] or [None]
    if counted is not None:
        snapshot = counted.short_id
    run.console.detail(f"{client.repository}: snapshot {snapshot} (streamed; its manifest beside it)", "dim")
    copy_state.record(step.directory, client.repository.masked, step.name, when, snapshot,
                      datetime.now().astimezone().isoformat(timespec="seconds"))
    for hook in target.post:
        run.hooks.run(hook, {"KOMPOSE_STATUS": "ok"})
    return snapshot


def _kill_all(run, targets: list[_Target], step: StreamDump) -> None:
    """Stop every restic before it reads the end of its input; forget a snapshot one wrote anyway."""
    for target in targets:
        target.process.kill()
    for target in targets:
        try:
            target.client.run(restic.unlock_argv(), "removing the killed restic's lock")
            _forget_partials(run, target.client, step.stack, step.database, quiet=True)
        except KomposeError:
            pass


def _forget_partials(run, client: Client, stack: str, database: str, quiet: bool = False) -> None:
    """Forget the partial streams of ``stack``'s ``database`` (a killed export's, a failed one's):
    safe under the stack's lock, which no other export holds now."""
    partials = [s for s in client.everything(stack, database) if s.kind == "partial"]
    if partials:
        client.run(restic.unlock_argv(), "removing stale locks")  # a killed restic's; live ones stay
        client.run(restic.forget_argv([s.id for s in partials], prune=False), "forgetting partial streams")
        if not quiet:
            run.console.detail(f"{client.repository}: forgot {len(partials)} partial stream(s) an interrupted "
                               "export left", "yellow")


STEPS = {StreamDump: stream_dump, PushCopy: push_copy, PullCopy: pull_copy, ForgetCopies: forget_copies, CheckRepository: check_repository,
         RemoveScratch: remove_scratch, CopiesDone: copies_done}
