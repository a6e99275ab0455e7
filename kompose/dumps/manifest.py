"""The manifest beside every dump (``<dump>.json``): what it is, where it came from, whether it was verified.

A manifest is written after the dump got its final name, with the dump's own rule:
temporary file, fsync, rename. A dump without one (older kompose, kompose.sh) is
still a dump: it imports, it is listed, it is simply not known to be verified.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kompose.dumps import files as dumps
from kompose.errors import DumpError

SCHEMA = 1
CHUNK = 1 << 20
MAX_BYTES = 1 << 20  # a manifest is a few hundred bytes


@dataclass
class Verification:
    ok: bool
    method: str  # what was checked, e.g. "plain: header and end-of-dump marker"
    detail: str = ""
    checked_at: str = ""


@dataclass
class Manifest:
    file: str
    format: str
    compression: str | None
    size: int
    sha256: str
    database: str
    stack: str
    server_version: str | None
    pg_dump_version: str | None
    container: str
    image: str
    started_at: str
    finished_at: str
    kompose_version: str
    verification: Verification
    schema: int = SCHEMA
    extra: dict[str, Any] = field(default_factory=dict)
    # the dump file's mtime when the manifest was written: a later change of it (or of the
    # size) means the dump is no longer the one that was verified
    mtime_ns: int | None = None
    # plain dumps: each table's rows as written in its COPY block ("schema.table", unquoted), or in its
    # INSERT statements (MariaDB, MySQL: "table");
    # None when not counted (custom archives, manifests of older kompose)
    rows: dict[str, int] | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=False) + "\n"


def path_of(dump: Path) -> Path:
    return dumps.manifest_path(dump)


def read(dump: Path) -> Manifest | None:
    """The manifest of ``dump``, or None when it has none. Raises DumpError for an unreadable one."""
    path = path_of(dump)
    try:
        if not path.is_file():  # a FIFO or a directory under a manifest's name: never opened
            if path.exists() or path.is_symlink():
                raise DumpError(f"{path.name} is not a regular file")
            return None
        if path.stat().st_size > MAX_BYTES:
            raise DumpError(f"{path.name} is not a kompose manifest (larger than {MAX_BYTES} bytes)")
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise DumpError(f"cannot read {path.name}: {exc.strerror}") from None
    try:
        data = json.loads(raw.decode("utf-8"))
        verification = Verification(**data.pop("verification"))
        known = {k: v for k, v in data.items() if k in Manifest.__dataclass_fields__}
        return Manifest(verification=verification, **known)
    except UnicodeDecodeError:
        raise DumpError(f"{path.name} is not a kompose manifest (not UTF-8 text)") from None
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise DumpError(f"{path.name} is not a kompose manifest ({type(exc).__name__}: {exc})") from None


def write(dump: Path, manifest: Manifest) -> Path:
    """Write the manifest atomically: ``<dump>.json.partial``, fsync, rename. Returns its path."""
    from kompose.host.files import write_atomically

    final = path_of(dump)
    try:
        write_atomically(final, manifest.to_json(), partial=final.with_name(final.name + dumps.PARTIAL_SUFFIX))
    except OSError as exc:
        raise DumpError(f"cannot write {final.name}: {exc.strerror or exc}") from None
    return final


def sha256_file(path: Path) -> str:
    """The file's sha256, read in chunks."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while True:
                chunk = handle.read(CHUNK)
                if not chunk:
                    break
                digest.update(chunk)
    except OSError as exc:
        raise DumpError(f"cannot read {path}: {exc.strerror}") from None
    return digest.hexdigest()


# ------------------------------------------------------------------ health


@dataclass(frozen=True)
class Health:
    """What is known about a dump without reading all of it (``checked``: with its sha256).

    state: "verified" (its manifest says it passed verification when it was written, and
    its size and mtime are still the ones recorded then; with ``checked``, its sha256 also
    matched just now), "changed" (its mtime moved since: it may not be the dump that was
    verified), "unverified" (no manifest, or an unreadable one: nothing was checked), or
    "bad" (size or sha256 differs from the manifest, failed verification, incomplete).
    ``detail`` says what was checked, and when.
    """

    state: str
    detail: str
    sha_checked: bool = False  # its sha256 was computed and matched its manifest's

    @property
    def good(self) -> bool:
        """Verified (by its manifest, its size and mtime); retention's safety rules also want ``sha_checked``."""
        return self.state == "verified"

    @property
    def label(self) -> str:
        return f"{self.state} ({self.detail})" if self.detail else self.state


def _when(iso: str) -> str:
    """'2026-12-01T16:20:05+00:00' -> '2026-12-01 16:20'."""
    return iso[:16].replace("T", " ") if iso else "at an unknown time"


def health(dump: dumps.Dump, checked: bool = False) -> Health:
    """A dump's health from its manifest and the file's size and mtime (never its contents);
    ``checked``: its sha256 is computed and compared too."""
    try:
        manifest = read(dump.path)
    except DumpError as exc:  # the manifest is broken, which says nothing about the dump
        return Health("unverified", exc.message)
    try:
        stat = dump.path.stat()
    except OSError as exc:
        return Health("bad", f"cannot stat: {exc.strerror}")
    if manifest is not None:
        if manifest.size != stat.st_size:
            return Health("bad", f"size {stat.st_size} differs from its manifest's {manifest.size}")
        if not manifest.verification.ok:
            return Health("bad", f"failed verification: {manifest.verification.detail}")
        if manifest.mtime_ns is not None and manifest.mtime_ns != stat.st_mtime_ns:
            return Health("changed", "modified after its manifest was written: not verified; "
                                     "db:verify compares its sha256")
        what = "header and end marker" if manifest.format == "plain" else "table of contents"
        rows = f", {len(manifest.rows)} tables' rows counted" if manifest.rows is not None else ""
        since = "size and mtime unchanged since" if manifest.mtime_ns is not None else "size unchanged since"
        detail = f"{what} at export {_when(manifest.verification.checked_at)}{rows}; {since}"
        if checked:
            try:
                actual = sha256_file(dump.path)
            except DumpError as exc:
                return Health("bad", exc.message)
            if actual != manifest.sha256:
                return Health("bad", "sha256 differs from its manifest's: the file changed after it was written")
            return Health("verified", detail + f"; sha256 matches (checked {_when(_now())})", True)
        return Health("verified", detail)
    if dump.compression:
        return Health("unverified", "no manifest: nothing checked")
    try:
        dumps.check_complete(dump.path, dump.format)
    except DumpError as exc:
        # the dump's name is already on the line that shows its health
        return Health("bad", exc.message.replace(str(dump.path), "it").replace(dump.path.name, "it"))
    return Health("unverified", "no manifest: pg_dump's end marker is there, nothing else checked"
                  if dump.format == "plain" else "no manifest: the archive header is there, nothing else checked")


def _now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")
