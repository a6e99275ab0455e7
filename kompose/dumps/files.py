"""Dump files: naming, finding, format detection, completeness, retention."""

from __future__ import annotations

import glob
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from kompose.errors import ConfigError, DumpError
from kompose.engines.mariadb import sql as mariadb
from kompose.engines.postgres.sql import DUMP_COMPLETE_MARKER

TIMESTAMP_FORMAT = "%Y%m%d_%H%M%S"
EXTENSIONS = {"plain": ".sql", "custom": ".dump"}
# plain dumps compressed as a whole (db:export --compress)
COMPRESSED_EXTENSIONS = {"gzip": ".sql.gz", "zstd": ".sql.zst"}
PARTIAL_SUFFIX = ".partial"
MANIFEST_SUFFIX = ".json"
_NAME = re.compile(r"^(?P<db>.+)_(?P<ts>\d{8}_\d{6})\.(?P<ext>sql|sql\.gz|sql\.zst|dump)$")
_COMPRESSION_OF = {"sql.gz": "gzip", "sql.zst": "zstd"}
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
CUSTOM_MAGIC = b"PGDMP"
# the last db:drill's result in the stack directory, read by kompose status and cron --check
DRILL_STATE = ".kompose-drill.json"
# how far from the end of a plain dump the completion marker may sit
# (pg_dump 15.14+ writes an \unrestrict line after it)
_TAIL_BYTES = 4096


@dataclass(frozen=True)
class Dump:
    path: Path
    database: str
    timestamp: datetime
    format: str
    compression: str = ""  # "", "gzip" or "zstd" (plain dumps only)

    @property
    def manifest_path(self) -> Path:
        return manifest_path(self.path)

    @property
    def size(self) -> int:
        return self.path.stat().st_size


DUMP_DIR_SETTING = "KOMPOSE_DUMP_DIR"
STACK_PLACEHOLDER = "{stack}"


def dump_dir(stack_dir: Path, stack: str, env, root: Path) -> Path:
    """Where a stack's dumps, manifests and kompose's state files live: ``KOMPOSE_DUMP_DIR`` of its
    layered ``env``, else the stack directory (kompose.sh's place).

    ``{stack}`` in the value expands to the stack's name; a value without it gets the name appended
    (``/var/backups/kompose`` -> ``/var/backups/kompose/<stack>``), so a setting in the root .env
    never puts two stacks' dumps, locks and state into one directory. ``~`` expands; a relative
    path is relative to the root (the one place every layer agrees on). The directory need not
    exist (the run creates it, mode 0700: host.files.make_private_dir). Raises ConfigError for another ``{...}`` placeholder.
    """
    value = (env.get(DUMP_DIR_SETTING) or "").strip()
    if not value:
        return stack_dir.resolve()
    expanded = value.replace(STACK_PLACEHOLDER, stack) if STACK_PLACEHOLDER in value else f"{value.rstrip('/')}/{stack}"
    rest = value.replace(STACK_PLACEHOLDER, "")
    if "{" in rest or "}" in rest:
        raise ConfigError(f"{DUMP_DIR_SETTING}={value!r}: only {STACK_PLACEHOLDER} is expanded there")
    if "\x00" in expanded:
        raise ConfigError(f"{DUMP_DIR_SETTING}: a NUL byte cannot be part of a path")
    path = Path(expanded).expanduser()
    if not path.is_absolute():
        path = root / path
    return path.resolve()


def extension(fmt: str, compression: str = "") -> str:
    return COMPRESSED_EXTENSIONS[compression] if compression else EXTENSIONS[fmt]


def manifest_path(dump: Path) -> Path:
    """The manifest beside a dump: ``<dump>.json``."""
    return dump.with_name(dump.name + MANIFEST_SUFFIX)


def dump_path(directory: Path, database: str, fmt: str, when: datetime, compression: str = "") -> Path:
    """``<dir>/<db>_<YYYYmmdd_HHMMSS>.<sql|sql.gz|sql.zst|dump>``, a second later while that name
    (or its .partial, or its manifest) is taken.

    Raises ConfigError for a database name that cannot be part of a file name in ``directory``
    (a '/' would put the dump elsewhere).
    """
    if "/" in database or "\x00" in database:
        raise ConfigError(f"DB_NAME {database!r} cannot name a dump file: it contains '/' or a NUL byte")
    while True:
        path = directory / f"{database}_{when.strftime(TIMESTAMP_FORMAT)}{extension(fmt, compression)}"
        taken = (path, path.with_name(path.name + PARTIAL_SUFFIX), manifest_path(path))
        if not any(p.exists() for p in taken):
            return path
        when += timedelta(seconds=1)


def stale_partial_glob(database: str) -> str:
    """A glob for the ``.partial`` files an interrupted export of ``database`` leaves, and nothing else."""
    return f"{glob.escape(database)}_????????_??????.*{PARTIAL_SUFFIX}"


def parse(path: Path) -> Dump | None:
    match = _NAME.match(path.name)
    if not match:
        return None
    try:
        when = datetime.strptime(match["ts"], TIMESTAMP_FORMAT)
    except ValueError:
        return None
    ext = match["ext"]
    return Dump(path, match["db"], when, "custom" if ext == "dump" else "plain", _COMPRESSION_OF.get(ext, ""))


def list_dumps(directory: Path, database: str | None = None) -> list[Dump]:
    """The dumps in a directory (of ``database`` when given), newest first. Partial files never count."""
    found = []
    for path in directory.iterdir() if directory.is_dir() else []:
        dump = parse(path)
        if dump and path.is_file() and (database is None or dump.database == database):
            found.append(dump)
    return sorted(found, key=lambda d: (d.timestamp, d.path.name), reverse=True)


def detect_format(path: Path) -> str:
    """'plain' or 'custom' from the file's first bytes. Raises DumpError for anything else,
    compressed files included (see detect)."""
    fmt, compression = detect(path)
    if compression:
        raise DumpError(f"{path} is compressed; decompress it first")
    return fmt


def detect(path: Path) -> tuple[str, str]:
    """(format, compression) from the file's first bytes: ('plain'|'custom', ''|'gzip'|'zstd').

    Raises DumpError for anything that is not a dump kompose can restore.
    """
    head = _head(path)
    if head.startswith(GZIP_MAGIC) or head.startswith(ZSTD_MAGIC):
        compression = "gzip" if head.startswith(GZIP_MAGIC) else "zstd"
        from kompose.dumps import codecs

        inner = codecs.head(path, compression)
        if inner.startswith(CUSTOM_MAGIC):
            raise DumpError(f"{path} is a {compression}-compressed custom dump: decompress it first")
        if inner and not inner.lstrip().startswith(b"--") and not mariadb.is_dump(inner):
            raise DumpError(f"{path} is {compression}-compressed but holds no plain dump from pg_dump")
        return "plain", compression
    if head.startswith(CUSTOM_MAGIC):
        return "custom", ""
    if head.startswith(b"--") or head.lstrip().startswith(b"--") or mariadb.is_dump(head):
        return "plain", ""
    raise DumpError(f"{path} is not a PostgreSQL dump (neither plain SQL from pg_dump nor custom format)")


def _head(path: Path) -> bytes:
    if path.is_dir():
        raise DumpError(f"{path} is a directory, not a dump")
    if path.exists() and not path.is_file():  # a FIFO would hang the read
        raise DumpError(f"{path} is not a regular file (a FIFO or a device?), not a dump")
    try:
        with open(path, "rb") as handle:
            head = handle.read(64)
    except OSError as exc:
        raise DumpError(f"cannot read {path}: {exc.strerror}") from None
    if not head:
        raise DumpError(f"{path} is empty")
    return head


def custom_header(head: bytes) -> tuple[str | None, str | None, str | None] | None:
    """(database, server version, pg_dump version) from a custom-format archive's header
    (pg_backup_archiver.c WriteHead), or None when it is not one kompose can read (archive
    format 1.10 or later: PostgreSQL 8.4+; a string may be None when the header is cut short).

    Layout: "PGDMP", version (3 bytes), int size, offset size, format, the compression (an int
    before archive version 1.15, one byte since), the creation time (7 ints), then three strings
    (an int length, then the bytes): database name, server version, pg_dump version. An int is a
    sign byte and ``int size`` bytes, least significant first.
    """
    if not head.startswith(CUSTOM_MAGIC) or len(head) < 11:
        return None
    version = (head[5], head[6], head[7])
    int_size = head[8]
    if version < (1, 10) or not 1 <= int_size <= 8:
        return None
    pos = 11  # after the offset size and the format bytes

    def read_int() -> int:
        nonlocal pos
        if pos + 1 + int_size > len(head):
            raise ValueError("header cut short")
        sign, raw = head[pos], head[pos + 1 : pos + 1 + int_size]
        pos += 1 + int_size
        value = int.from_bytes(raw, "little")
        return -value if sign else value

    def read_str() -> str | None:
        nonlocal pos
        length = read_int()
        if length < 0:
            return None
        if pos + length > len(head):
            raise ValueError("header cut short")
        raw = head[pos : pos + length]
        pos += length
        return raw.decode("utf-8")

    found: list[str | None] = []
    try:
        if version >= (1, 15):
            pos += 1
        else:
            read_int()
        for _ in range(7):
            read_int()
        for _ in range(3):
            found.append(read_str())
    except (ValueError, UnicodeDecodeError):
        if not found:
            return None
    found += [None] * (3 - len(found))
    return found[0], found[1], found[2]


def _custom_archive_database(head: bytes) -> str | None:
    """The database name in a custom-format archive header, or None."""
    header = custom_header(head)
    return header[0] if header else None


# pg_dump --create writes, near the top: CREATE DATABASE <name> …; \connect <name>
_PLAIN_DATABASE = re.compile(rb'^(?:CREATE DATABASE|\\connect)[ \t]+("(?:[^"\n]|"")*"|[^\s;"-][^\s;]*)', re.M)


def _plain_create_database(path: Path) -> str | None:
    """The database a plain ``pg_dump --create`` dump creates or connects to (its first 64 KiB), or None."""
    from kompose.dumps import codecs

    try:
        compression = detect(path)[1]
        if compression:
            head = codecs.head(path, compression, 1 << 16)
        else:
            with open(path, "rb") as handle:
                head = handle.read(1 << 16)
    except (OSError, DumpError):
        return None
    match = _PLAIN_DATABASE.search(head)
    if not match:
        return None
    name = match.group(1)
    if name.startswith(b'"'):
        name = name[1:-1].replace(b'""', b'"')
    return name.decode("utf-8", "replace")


def dump_database(path: Path) -> str | None:
    """The database a dump was made from, when it says: a custom archive's header, else a
    kompose-style file name (``<db>_<timestamp>.sql``). None when it cannot be told."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
    except OSError:
        return None
    if head.startswith(CUSTOM_MAGIC):
        name = _custom_archive_database(head)
        if name is not None:
            return name
    else:
        name = _plain_create_database(path)
        if name is not None:
            return name
    dump = parse(path)
    return dump.database if dump else None


def check_complete(path: Path, fmt: str, compression: str = "") -> None:
    """Raise DumpError unless ``path`` holds a complete dump of format ``fmt``.

    Plain: pg_dump's closing marker near the end (of the decompressed content when
    ``compression`` is set: the whole file is decompressed, as a stream). Custom: the
    archive header (the body is checked by pg_restore when it reads it).
    """
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DumpError(f"cannot read {path}: {exc.strerror}") from None
    if size == 0:
        raise DumpError(f"{path.name} is empty: pg_dump wrote nothing")
    actual, actual_compression = detect(path)
    if actual != fmt:
        raise DumpError(f"{path.name} is a {actual} dump, expected {fmt}")
    if actual_compression != compression:
        raise DumpError(f"{path.name} is {actual_compression or 'not'} compressed, expected {compression or 'none'}")
    if fmt == "plain":
        head, tail = plain_ends(path, compression)
        problem = plain_ending_problem(head, tail)
        if problem:
            raise DumpError(f"{path.name} is incomplete: {problem} (truncated?)")


_RESTRICT = re.compile(rb"^\\restrict (\S+)$", re.MULTILINE)


def plain_ending_problem(head: bytes, tail: bytes) -> str | None:
    """Why a plain dump with this beginning and end is not complete, or None.

    Complete means pg_dump's closing line, followed only by its trailer ('--', blank
    lines, '\\unrestrict <key>') — so a data row quoting the closing line does not count —
    and, when the dump starts with '\\restrict <key>' (pg_dump 15.14+), the matching
    '\\unrestrict <key>' after it.
    """
    if mariadb.is_dump(head):
        return mariadb.ending_problem(tail)
    lines = tail.split(b"\n")
    for index in range(len(lines) - 1, -1, -1):
        line = lines[index]
        if line == DUMP_COMPLETE_MARKER:
            break
        if line.strip() not in (b"", b"--") and not line.startswith(b"\\unrestrict "):
            return "it does not end with pg_dump's closing line"
    else:
        return "it does not end with pg_dump's closing line"
    restrict = _RESTRICT.search(head)
    if restrict and b"\\unrestrict " + restrict.group(1) not in lines[index + 1:]:
        return "it lacks the \\unrestrict line matching its \\restrict line"
    return None


def to_remove(dumps: list[Dump], keep: int) -> list[Dump]:
    """All but the newest ``keep`` dumps (``dumps`` newest first)."""
    return dumps[max(keep, 0):]


def plain_ends(path: Path, compression: str = "", size: int = _TAIL_BYTES,
               tail_size: int | None = None, on_progress=None) -> tuple[bytes, bytes]:
    """The first ``size`` and last ``tail_size`` (default: ``size``) bytes of a plain dump's
    content; a compressed file is decompressed as a stream to its end (which also checks
    its integrity; ``on_progress`` is told the bytes of the file read, as codecs.Source says).

    Raises DumpError when the file cannot be read or decompressed.
    """
    tail_size = size if tail_size is None else tail_size
    if not compression:
        try:
            with open(path, "rb") as handle:
                head = handle.read(size)
                handle.seek(0, 2)
                handle.seek(max(0, handle.tell() - tail_size))
                return head, handle.read()
        except OSError as exc:
            raise DumpError(f"cannot read {path}: {exc.strerror}") from None
    from kompose.dumps import codecs

    head = b""
    tail = b""
    for chunk in codecs.iter_plain(path, compression, on_progress):
        if len(head) < size:
            head += chunk[: size - len(head)]
        tail = (tail + chunk)[-tail_size:]
    return head, tail


def orphan_manifests(directory: Path, database: str) -> list[Path]:
    """Manifests of ``database``'s dumps in ``directory`` whose dump no longer exists."""
    found = []
    for path in sorted(directory.glob(f"*{MANIFEST_SUFFIX}")) if directory.is_dir() else []:
        dump = parse(path.with_name(path.name.removesuffix(MANIFEST_SUFFIX)))
        if dump and dump.database == database and not dump.path.exists():
            found.append(path)
    return found
