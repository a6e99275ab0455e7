"""Compression of plain dumps on the host: parsing --compress, streaming writers and readers.

gzip exports are compressed by pg_dump itself inside the container (``--compress=N``:
what crosses the exec stream shrinks, see docs/operations.md); zstd, which PostgreSQL 15's
pg_dump lacks and the images rarely ship, is compressed on the host by the ``zstd``
program. Reading (import, verify, drill) decompresses on the host: gzip with the stdlib
(zlib), zstd with ``zstd -dc``. Everything streams in chunks: memory stays flat.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import io
import os
import shutil
import subprocess
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from kompose.errors import DumpError, UsageError, last_lines
from kompose.host import processes
from kompose.host.files import DUMP_MODE

CODECS = ("gzip", "zstd")
# gzip -1 is ~2.5x faster than -6 for ~8 % more bytes (docs/operations.md): a dump that
# takes longer than its window is worse than a slightly bigger one
DEFAULT_LEVEL = {"gzip": 1, "zstd": 3}
LEVELS = {"gzip": range(1, 10), "zstd": range(1, 20)}
CHUNK = 1 << 20


@dataclass(frozen=True)
class Compression:
    codec: str
    level: int

    def __str__(self) -> str:
        return f"{self.codec}:{self.level}"


def parse(value: str | None) -> Compression | None:
    """``gzip``, ``zstd``, ``gzip:6``, ``zstd:19``; ``none`` or empty -> None. Raises UsageError."""
    text = (value or "").strip().lower()
    if text in ("", "none", "no", "off"):
        return None
    codec, _, level_text = text.partition(":")
    if codec not in CODECS:
        raise UsageError(f"--compress {value!r}: choose gzip, zstd or none (optionally with :LEVEL)")
    level = DEFAULT_LEVEL[codec]
    if level_text:
        if not level_text.isdigit() or int(level_text) not in LEVELS[codec]:
            span = LEVELS[codec]
            raise UsageError(f"--compress {value!r}: {codec} levels are {span.start}..{span.stop - 1}")
        level = int(level_text)
    return Compression(codec, level)


def zstd_program() -> str:
    """The host's zstd binary. Raises DumpError saying how to get it when missing."""
    found = shutil.which("zstd")
    if not found:
        raise DumpError("zstd compression needs the zstd program on the host (Debian: apt-get install zstd)")
    return found


# ---------------------------------------------------------------- writing


def _private(path: str, flags: int) -> int:
    """open()'s opener for a dump: created 0600 (and made so), whatever the umask."""
    fd = os.open(path, flags, DUMP_MODE)
    try:
        os.fchmod(fd, DUMP_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd


_HEAD_BYTES = 64  # enough for mariadb-dump's first line (dumps.mariadb_rows: its rows)


class Sink:
    """Where an exec's stdout goes: a file, optionally through a compressor.

    Uncompressed (and pg_dump-compressed) streams are hashed as they pass, so the
    manifest needs no second read of a big file: ``sha256`` is set after close().
    """

    def __init__(self, path: Path, codec: str = "", level: int = 0):
        from kompose.dumps.plain_sql import Scanner

        self.name = str(path)
        self.sha256: str | None = None
        # a plain dump's COPY rows (pg_dump) or INSERT rows (mariadb-dump, mysqldump: rows_kind
        # "insert"), counted as they pass (None: not a plain dump, or not countable)
        self.rows: dict[str, int] | None = None
        self.rows_kind = "copy"
        self._counter: Scanner | None = Scanner(path.name, rewrite=False)
        self._inserts = None  # dumps.mariadb_rows.RowCounter, once the first bytes said mariadb-dump
        self._head: bytes | None = b""  # the first bytes, until they say which dump this is
        self._file = open(path, "wb", opener=_private)
        self._hash = hashlib.sha256() if not codec else None
        self._proc: subprocess.Popen | None = None
        self._errors = None
        if codec == "zstd":
            self._errors = tempfile.TemporaryFile()
            try:
                self._proc = processes.spawn_filter(
                    [zstd_program(), "-q", f"-{level or DEFAULT_LEVEL['zstd']}", "-T0", "-c"],
                    processes.PIPE, self._file, self._errors, "zstd",
                )
            except BaseException:
                self._file.close()
                raise
        elif codec:
            self._file.close()
            raise DumpError(f"no host-side compressor for {codec!r}")
        self._closed = False

    def _count(self, data: bytes, final: bool = False) -> None:
        if self._head is not None:  # which dump: its first bytes (a banner fits in _HEAD_BYTES)
            self._head += bytes(data)
            if len(self._head) < _HEAD_BYTES and not final:
                return
            data, self._head = self._head, None
            from kompose.engines.mariadb import sql as mariadb

            if mariadb.is_dump(data):
                from kompose.dumps.mariadb_rows import RowCounter

                self._counter, self._inserts, self.rows_kind = None, RowCounter(), "insert"
        if self._inserts is not None:
            self._inserts.feed(bytes(data))
        elif self._counter is not None:
            try:
                self._counter.feed(data)
            except DumpError:
                self._counter = None  # a line too long to follow: the manifest counts from the file

    def write(self, data: bytes) -> int:
        self._count(data)
        if self._proc is not None:
            try:
                self._proc.stdin.write(data)
            except BrokenPipeError:  # zstd died: say why (a full disk), not "Broken pipe"; the exec stops
                raise self._compressor_error() from None
        else:
            self._file.write(data)
            self._hash.update(data)
        return len(data)

    def flush(self) -> None:
        if self._proc is None:
            self._file.flush()

    def _compressor_error(self) -> OSError:
        """Why zstd stopped reading, as an OSError (the writer's error): its own words."""
        try:
            code = self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            return OSError(errno.EPIPE, "zstd stopped reading its input")
        reason = _tail(self._errors)
        if "No space left on device" in reason:
            return OSError(errno.ENOSPC, "No space left on device (zstd could not write the compressed dump)")
        return OSError(errno.EPIPE, f"zstd failed (exit {code}): {reason or 'no error output'}")

    def close(self) -> None:
        """Finish the stream. Raises DumpError when the compressor failed."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._proc is not None:
                try:
                    self._proc.stdin.close()
                except OSError:
                    pass
                code = self._proc.wait()
                if code != 0:
                    raise DumpError(f"zstd failed (exit {code}): {_tail(self._errors)}")
            else:
                self._file.flush()
                self.sha256 = self._hash.hexdigest()
            if self._head is not None:
                self._count(b"", final=True)
            if self._inserts is not None:
                self._inserts.end()
                self.rows = dict(self._inserts.rows)
            elif self._counter is not None and not self._counter.disabled:
                try:
                    self._counter.end()
                    self.rows = dict(self._counter.scan.rows)
                except DumpError:
                    self.rows = None
        finally:
            self._file.close()
            if self._errors is not None:
                self._errors.close()

    def abort(self) -> None:
        """Stop without finishing (after a failure): no process of ours keeps running."""
        if self._closed:
            return
        self._closed = True
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
        self._file.close()
        if self._errors is not None:
            self._errors.close()


# ---------------------------------------------------------------- reading


class Source:
    """A dump file read as plain SQL: decompressed on the fly when ``codec`` is set.

    read() never raises on bad compressed data: it ends the stream (so the program
    reading it sees EOF and the exec ends cleanly) and close() raises DumpError.

    ``on_progress``: called after each read with the bytes *of the file* consumed since the
    last call (compressed bytes for a compressed dump), so a progress bar's total is the
    file's size whatever the codec.
    """

    def __init__(self, path: Path, codec: str = "", on_progress: Callable[[int], None] | None = None):
        if codec not in ("", *CODECS):
            raise DumpError(f"cannot read {codec!r}-compressed dumps")
        self.name = str(path)
        self._error: str | None = None
        self._proc: subprocess.Popen | None = None
        self._errors = None
        self._on_progress = on_progress
        self._consumed = 0
        self._raw = open(path, "rb")  # the file itself: its offset is the progress
        try:
            if codec == "zstd":
                # zstd reads the file as its stdin: the open file (and its offset) is shared with kompose
                self._errors = tempfile.TemporaryFile()
                self._proc = processes.spawn_filter(
                    [zstd_program(), "-dc"], self._raw, processes.PIPE, self._errors, "zstd -d",
                )
                self._stream = self._proc.stdout
            elif codec == "gzip":
                self._stream = gzip.GzipFile(fileobj=self._raw, mode="rb")
            else:
                self._stream = self._raw
        except BaseException:
            self._raw.close()
            if self._errors is not None:
                self._errors.close()
            raise

    def consumed(self) -> int:
        """The bytes of the file read so far (by kompose, or by zstd)."""
        try:
            if self._proc is not None:  # zstd's reads move the shared offset
                return os.lseek(self._raw.fileno(), 0, os.SEEK_CUR)
            return self._raw.tell()
        except (OSError, ValueError):
            return self._consumed

    def fileno(self) -> int:
        """The file's descriptor when it is read as it is (lets the exec send it with sendfile(2)).
        Raises io.UnsupportedOperation when the data is decompressed on the way."""
        if self._proc is not None or not hasattr(self._stream, "raw"):
            raise io.UnsupportedOperation("decompressed on the fly")
        return self._stream.fileno()

    def read(self, size: int = CHUNK) -> bytes:
        if self._error:
            return b""
        try:
            chunk = self._stream.read(size)
        except (OSError, EOFError, zlib.error) as exc:
            self._error = f"{Path(self.name).name} cannot be decompressed: {exc}"
            return b""
        if self._on_progress is not None:
            done = self.consumed()
            if done > self._consumed:
                self._on_progress(done - self._consumed)
                self._consumed = done
        return chunk

    def readinto(self, buffer) -> int:
        """read() into ``buffer`` (a bytearray reused by the caller: no fresh MiB, and no page
        faults, per read); the count, 0 at the end (or after bad compressed data, like read())."""
        if self._error:
            return 0
        try:
            count = self._stream.readinto(buffer) or 0
        except (OSError, EOFError, zlib.error) as exc:
            self._error = f"{Path(self.name).name} cannot be decompressed: {exc}"
            return 0
        if self._on_progress is not None:
            done = self.consumed()
            if done > self._consumed:
                self._on_progress(done - self._consumed)
                self._consumed = done
        return count

    def close(self) -> None:
        """Raises DumpError when the data could not be decompressed completely."""
        for stream in (self._stream, self._raw):
            try:
                stream.close()
            except OSError:
                pass
        if self._proc is not None:
            code = self._proc.wait()
            if code != 0 and not self._error:
                self._error = f"{Path(self.name).name} cannot be decompressed: zstd exit {code}: {_tail(self._errors)}"
            self._errors.close()
        if self._error:
            raise DumpError(self._error)

    def abort(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
        try:
            self.close()
        except DumpError:
            pass


def iter_plain(path: Path, codec: str = "", on_progress: Callable[[int], None] | None = None) -> Iterator[bytes]:
    """The file's plain content in chunks. Raises DumpError when it cannot be decompressed.
    ``on_progress``: see Source."""
    source = Source(path, codec, on_progress)
    try:
        while True:
            chunk = source.read(CHUNK)
            if not chunk:
                break
            yield chunk
    except BaseException:
        source.abort()
        raise
    source.close()


def head(path: Path, codec: str = "", size: int = 64) -> bytes:
    """The first ``size`` bytes of the plain content (b"" when unreadable)."""
    source = Source(path, codec)
    try:
        return source.read(size)
    finally:
        source.abort()


def _tail(handle) -> str:
    if handle is None:
        return ""
    handle.seek(0)
    return last_lines(handle.read()[-4096:], empty="no error output")
