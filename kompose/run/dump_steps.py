"""How a stack run executes the steps of verified dumps: verification, checksums, manifests,
retention reports, row counts and drill records (a mix-in of run.StackRun).

What a run learns about a file (when its stream started and ended, its sha256 when the
bytes passed through kompose, its verification) lives in ``self.files`` keyed by path,
so the manifest is written from facts, not re-derived.
"""

from __future__ import annotations

import io
import json
import threading
from datetime import datetime, timezone
from pathlib import Path

from kompose import __version__
from kompose.dumps import files as dumps
from kompose.docker import exec as docker_exec
from kompose.host.files import write_atomically
from kompose.dumps import manifest
from kompose.dumps import mariadb_rows, plain_guard, verify
from kompose.errors import DumpError, KomposeError
from kompose.plan.steps import (
    CheckChecksum, CheckServerVersion, Container, CountRows, RecordDrill, RemoveOrphans, Retention, StartChecksum,
    VerifyDump, VerifyDumps, WriteManifest,
)


LIST_PREFIX = 8 << 20  # tables of contents are far smaller; a bigger one gets the whole file


class _Prefix:
    """The first ``limit`` bytes of a file, as a readable stream."""

    def __init__(self, handle, limit: int):
        self.handle = handle
        self.left = limit

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        data = self.handle.read(self.left if size < 0 else min(size, self.left))
        self.left -= len(data)
        return data


def now_iso() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


class DumpSteps:
    """Handlers for the dump-verification steps; expects StackRun's ctx, console, outcome, files."""

    files: dict[Path, dict]

    # -- structure

    def _structure(self, path: Path, fmt: str, compression: str, container: Container | None,
                   thorough: bool) -> verify.Structure:
        """Check a dump's structure; custom archives are read by pg_restore inside ``container``."""
        if fmt == "plain":
            return verify.check_plain(path, compression)
        try:
            dumps.check_complete(path, "custom")
        except DumpError as exc:
            return verify.Structure(False, verify.LIST_METHOD, exc.message)
        if container is None:
            return verify.Structure(False, verify.LIST_METHOD, "no database container to run pg_restore in")
        if thorough:
            result = self._pg_restore(container, ("pg_restore", "--file=/dev/null"), path, None)
            structure = verify.parse_listing(result.exit_code, result.stdout, result.stderr, verify.FULL_METHOD)
            if structure.ok:  # a full read prints no versions: take them from the header
                structure = verify.Structure(True, structure.method, structure.detail,
                                             *verify.dump_versions(path, "custom"))
            return structure
        # the table of contents sits at the start of the archive: send a prefix, and the
        # whole file only when the prefix was not enough
        size = path.stat().st_size
        result = self._pg_restore(container, ("pg_restore", "--list"), path, LIST_PREFIX)
        if result.exit_code != 0 and size > LIST_PREFIX:
            result = self._pg_restore(container, ("pg_restore", "--list"), path, None)
        return verify.parse_listing(result.exit_code, result.stdout, result.stderr, verify.LIST_METHOD)

    def _pg_restore(self, container: Container, argv: tuple[str, ...], path: Path, limit: int | None):
        """Run pg_restore reading ``path`` (its first ``limit`` bytes) on stdin; whatever pg_restore
        leaves unread is drained, so the stream never breaks under it."""
        script = '"$@"; status=$?; cat >/dev/null; exit $status'
        with open(path, "rb") as handle:
            stream = _Prefix(handle, limit) if limit else handle
            return docker_exec.container_exec(self.ctx.docker(), container.id, ("sh", "-c", script, "sh", *argv), {},
                                          stdin=stream)

    def _checksum(self, path: Path) -> tuple[bool | None, str]:
        """(matches?, text) against the manifest; (None, why) when there is nothing to compare with.
        The sha256 a StartChecksum computed in the background is awaited and used."""
        found = manifest.read(path)
        if found is None:
            return None, "no manifest (an older dump): checksum not checked"
        hashing = self.files.get(path, {}).pop("hashing", None)
        if hashing is not None:
            thread, result = hashing
            thread.join()
            if "error" in result:
                raise result["error"]
            actual = result["sha256"]
        else:
            actual = manifest.sha256_file(path)
        if actual != found.sha256:
            return False, (f"sha256 {actual[:16]}… differs from its manifest's {found.sha256[:16]}…: "
                           "the file changed after it was written")
        return True, f"sha256 matches its manifest ({actual[:16]}…)"

    def _run_verifydump(self, step: VerifyDump) -> None:
        problem = self._verify_one(step)
        if problem:
            raise DumpError(problem)

    def _run_verifydumps(self, step: VerifyDumps) -> None:
        failed = [name for name in (self._verify_one(item) for item in step.items) if name]
        self.outcome.details["verified"] = len(step.items) - len(failed)
        self.outcome.details["failed"] = len(failed)
        if failed:
            raise DumpError(f"{len(failed)} of {len(step.items)} dump(s) failed verification")

    def _verify_one(self, step: VerifyDump) -> str | None:
        """Verify one dump, print one line about it; the problem as text, or None when it is good."""
        name = step.path.name.removesuffix(dumps.PARTIAL_SUFFIX)
        structure = self._structure(step.path, step.format, step.compression, step.container, step.thorough)
        self.files.setdefault(step.path, {})["verification"] = structure
        parts = [structure.detail]
        ok = structure.ok
        if step.checksum:
            try:
                matches, text = self._checksum(step.path)
            except DumpError as exc:
                matches, text = False, exc.message
            parts.append(text)
            ok = ok and matches is not False
            if step.format == "plain" and matches is not False:
                text = self._row_counts_match(step.path, step.compression)
                if text:
                    parts.append(text)
                    ok = ok and not text.startswith("row counts differ")
        record = {"file": str(step.path), "ok": ok, "structure": structure.ok, "detail": "; ".join(parts)}
        self.outcome.details.setdefault("dumps", []).append(record)
        if ok:
            self.console.detail(f"✓ {name}: " + "; ".join(parts), "green")
            return None
        self.console.failure(f"{name}: " + "; ".join(parts))
        return f"{name} failed verification: " + "; ".join(parts)

    # -- import's guards

    def _run_startchecksum(self, step: StartChecksum) -> None:
        """Hash the dump in a thread (hashlib and reads let go of the GIL) while the restore streams it."""
        try:
            if manifest.read(step.path) is None:
                return  # nothing to compare with: CheckChecksum says so
        except DumpError:
            return  # CheckChecksum reports the unreadable manifest
        result: dict = {}

        def work() -> None:
            try:
                result["sha256"] = manifest.sha256_file(step.path)
            except DumpError as exc:
                result["error"] = exc

        thread = threading.Thread(target=work, daemon=True, name="kompose-sha256")
        thread.start()
        self.files.setdefault(step.path, {})["hashing"] = (thread, result)

    def _run_checkchecksum(self, step: CheckChecksum) -> None:
        try:
            matches, text = self._checksum(step.path)
        except DumpError as exc:
            matches, text = False, exc.message
        if matches is None:
            self.console.detail(text, "dim")
        elif matches:
            self.console.detail(text, "dim")
        elif step.force:
            self.console.warn(f"{step.path.name}: {text}; importing it anyway (--force)")
            self.outcome.notes.append(f"checksum mismatch ignored (--force): {text}")
        else:
            raise DumpError(f"{step.path.name}: {text}; refusing to import it (--force imports it anyway)")

    def _run_checkserverversion(self, step: CheckServerVersion) -> None:
        found = None
        try:
            found = manifest.read(step.dump)
        except DumpError:
            pass
        versions = (found.server_version, found.pg_dump_version) if found else \
            verify.dump_versions(step.dump, step.format, step.compression)
        numbers = [n for n in (verify.version_number(v) for v in versions) if n]
        if not numbers:
            self.console.detail(f"{step.dump.name} states no PostgreSQL version: not compared", "dim")
            return
        from kompose.run.dump_needs import server_facts  # one session: the restore's settings and psql too

        try:
            facts = server_facts(self, step.container, step.argv, step.env)
            server = facts.server if facts.exit_code == 0 else None
        except KomposeError:
            server = None
        if server is None:
            self.console.detail("could not ask the server for its version: not compared", "dim")
            return
        dump_major = max(numbers)
        server_major = server // 10000 * 10000 if server >= 100000 else server // 100 * 100
        if server_major < dump_major:
            text = (f"the server is PostgreSQL {verify.major_text(server_major)} but {step.dump.name} comes from "
                    f"{verify.major_text(dump_major)} (server {versions[0] or '?'}, pg_dump {versions[1] or '?'}): "
                    "the restore may fail on syntax the older server does not know")
            self.console.warn(text)
            self.outcome.notes.append(text)

    # -- manifests

    def _run_writemanifest(self, step: WriteManifest) -> None:
        source = step.source or step.dump
        facts = self.files.get(source, {})
        size = source.stat().st_size
        sha = facts.get("sha256") if facts.get("bytes") == size else None
        sha = sha or manifest.sha256_file(source)
        rows = None
        if step.format == "plain" and getattr(getattr(self, "engine", None), "plain_guard", False):
            # counted as the stream passed, else (pg_dump gzipped it, the helper wrote it) read now
            rows = facts.get("rows") if facts.get("bytes") == size and facts.get("rows") is not None else None
            if rows is None:
                rows = plain_guard.scan_file(source, step.compression).rows
        elif step.format == "plain" and facts.get("bytes") == size and facts.get("rows_kind") == "insert":
            rows = facts.get("rows")  # a MariaDB dump's INSERT rows, counted as the stream passed
        elif step.format == "plain" and mariadb_rows.is_dump_file(source, step.compression):
            rows = mariadb_rows.scan_file(source, step.compression)  # dumps/mariadb_rows.py
        structure = facts.get("verification")
        if structure is None:  # a plan without a VerifyDump step: check now, a manifest never guesses
            structure = self._structure(source, step.format, step.compression, step.container, False)
        data = manifest.Manifest(
            file=step.dump.name, format=step.format, compression=step.compression or None, size=size, sha256=sha,
            database=step.database, stack=step.stack, server_version=structure.server_version,
            pg_dump_version=structure.pg_dump_version, container=step.container.name, image=step.container.image,
            started_at=facts.get("started") or self.started_at or now_iso(),
            finished_at=facts.get("finished") or now_iso(), kompose_version=__version__,
            verification=manifest.Verification(structure.ok, structure.method, structure.detail, now_iso()),
            mtime_ns=source.stat().st_mtime_ns, rows=rows,
        )
        written = manifest.write(step.dump, data)
        self.outcome.details["manifest"] = str(written)
        self.outcome.details["sha256"] = sha
        self.console.detail(f"manifest {written.name}: sha256 {sha[:16]}…", "dim")

    # -- cleanup, drills

    def _run_retention(self, step: Retention) -> None:
        self.console.detail(f"policy: {step.policy}", "dim")
        for name, keep, rule, health in step.decisions:
            self.console.detail(f"{'keep  ' if keep else 'remove'}  {name}  ({rule}; {health})",
                                "dim" if keep else "yellow")
        self.outcome.details["policy"] = step.policy
        self.outcome.details["decisions"] = [
            {"file": name, "keep": keep, "rule": rule, "health": health} for name, keep, rule, health in step.decisions
        ]

    def _run_removeorphans(self, step: RemoveOrphans) -> None:
        for path in dumps.orphan_manifests(step.directory, step.database):
            path.unlink(missing_ok=True)
            self.console.detail(f"removed {path.name} (its dump is gone)", "yellow")

    def _run_countrows(self, step: CountRows) -> None:
        result = docker_exec.container_exec(self.ctx.docker(), step.container.id, step.argv, dict(step.env),
                                        stdin=io.BytesIO(step.script.encode()))
        if result.exit_code != 0:
            raise KomposeError(self.engine.failure_message("psql (row counts)", result.exit_code, result.stderr))
        counts: dict[str, int] = {}
        for line in result.stdout.decode("utf-8", "replace").splitlines():
            table, _, count = line.rpartition("\t")
            if table and count.strip().isdigit():
                counts[table] = int(count)
        self.outcome.details["row_counts"] = counts
        width = max([len(t) for t in counts] + [5])
        self.console.detail(f"{len(counts)} table(s), {sum(counts.values())} row(s):", "blue")
        for table, count in counts.items():
            self.console.stream_line("", f"{table:<{width}}  {count:>12}")

    def _run_recorddrill(self, step: RecordDrill) -> None:
        record = {
            "dump": str(step.dump), "at": now_iso(), "ok": self.outcome.status == "ok",
            "error": self.outcome.error, "row_counts": self.outcome.details.get("row_counts", {}),
        }
        write_atomically(step.state_file, json.dumps(record, indent=2),
                         partial=step.state_file.with_name(step.state_file.name + dumps.PARTIAL_SUFFIX))
