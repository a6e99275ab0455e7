"""Following a file another process writes: write-back as it grows and its sha256 on the way
(_Writeback), and copying a named pipe into a file in 1 MiB writes, hashed (_PipeCopier).
Used by the direct transport's helper container (docker/helper.py); nothing here knows Docker."""

from __future__ import annotations

import fcntl
import hashlib
import os
import select
import threading
import time
from pathlib import Path
from typing import Callable

from kompose.host.files import DUMP_MODE


# start writing the growing file back to disk every this many bytes, so the final fsync
# finds little left to write (the kernel would otherwise hold it all in the page cache)
WRITEBACK_EVERY = 32 << 20
HASH_CHUNK = 8 << 20
NAP = 0.002  # seconds the pipe copier waits for the pipe to fill
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
F_GETPIPE_SZ = getattr(fcntl, "F_GETPIPE_SZ", 1032)


def start_writeback(fd: int, start: int, end: int) -> int:
    """Start writing bytes [start, end) of a file back to disk, without waiting; returns the new start.

    DONTNEED starts write-back of the dirty pages and drops the clean ones. Only an
    optimisation: the fsync before the rename is what makes the dump durable.
    """
    try:
        os.posix_fadvise(fd, start, end - start, os.POSIX_FADV_DONTNEED)
    except OSError:
        return start
    return end


class _Writeback:
    """Follows a file another process is writing: reports growth, hashes what was appended
    (when asked), and starts writing it back to disk early."""

    def __init__(self, path: Path, hashing: bool = False):
        self.path = path
        self.size = 0
        self.flushed = 0
        self.fd: int | None = None
        self.hash = hashlib.sha256() if hashing else None
        self.hashed = 0
        self.hash_failed = False

    def _open(self) -> int | None:
        if self.fd is None:
            try:
                self.fd = os.open(self.path, os.O_RDONLY)
            except OSError:
                return None
        return self.fd

    def _hash_to(self, size: int) -> None:
        """Hash bytes [hashed, size): just written, so read from the page cache."""
        if self.hash is None or self.hash_failed or self._open() is None:
            return
        try:
            while self.hashed < size:
                chunk = os.pread(self.fd, min(size - self.hashed, HASH_CHUNK), self.hashed)
                if not chunk:
                    break
                self.hash.update(chunk)
                self.hashed += len(chunk)
        except OSError:
            self.hash_failed = True  # the manifest then reads the file itself

    def poll(self) -> int:
        try:
            size = self.path.stat().st_size
        except OSError:
            return 0
        grown, self.size = size - self.size, size
        self._hash_to(size)
        # write back only what is hashed: DONTNEED also drops the pages once they are clean
        limit = self.hashed if self.hash is not None and not self.hash_failed else size
        if limit - self.flushed >= WRITEBACK_EVERY and self._open() is not None:
            self.flushed = start_writeback(self.fd, self.flushed, limit)
        return max(grown, 0)

    def finish(self) -> str | None:
        """After the writer exited: hash the rest; the sha256 of the whole file, or None."""
        if self.hash is None or self.hash_failed:
            return None
        try:
            size = self.path.stat().st_size
        except OSError:
            return None
        self._hash_to(size)
        return self.hash.hexdigest() if self.hashed == size and not self.hash_failed else None

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class _PipeCopier:
    """Copies the named pipe the helper writes into the output file, hashing it on the way.

    The pipe is created (mode 0600: the helper runs as kompose's own uid, or as a rootless
    engine's root, which is kompose's user) and opened for reading before the helper starts,
    so the helper's open never blocks and a kompose that dies closes it: pg_dump then fails
    on a broken pipe instead of writing to nobody. A thread reads up to 1 MiB at a time and
    writes the file in 1 MiB blocks (pg_dump's own 4 KiB stdio writes cost about three times
    the system time), waking only every few milliseconds while the pipe fills, and starts
    write-back early so the final fsync finds little left. When the file cannot be written,
    the copier closes the pipe, pg_dump fails, and ``error`` says why.

    ``tap``: called with every block written (a bytearray the copier reuses for the next block,
    or bytes for the last one), in the copier's thread, so whatever the caller learns from the
    bytes (a plain dump's row counts) costs no second read of the file and no copy of it.
    A tap that raises is dropped (``tap_failed``); the copy goes on.
    """

    BLOCK = 1 << 20

    def __init__(self, pipe: Path, output: Path, tap: Callable[[bytes], object] | None = None):
        self.pipe = pipe
        self.output = output
        self.tap = tap
        self.tap_failed = False
        self.hash = hashlib.sha256()
        self.size = 0
        self.reported = 0
        self.error: OSError | None = None
        self._stop = threading.Event()
        self.fd: int | None = None
        self.out: int | None = None
        self.thread: threading.Thread | None = None
        try:
            pipe.unlink(missing_ok=True)
            os.mkfifo(pipe, 0o600)
        except OSError as exc:
            raise _NoPipe(exc.strerror or str(exc)) from None
        try:
            # non-blocking: a FIFO's open waits for a writer otherwise
            self.fd = os.open(pipe, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            try:
                fcntl.fcntl(self.fd, F_SETPIPE_SZ, self.BLOCK)  # fewer, larger reads
            except OSError:
                pass  # a smaller pipe only costs more reads
            try:
                large = fcntl.fcntl(self.fd, F_GETPIPE_SZ) >= self.BLOCK
            except OSError:
                large = False
            # napping while the pipe fills only pays when it holds milliseconds of pg_dump's output
            self.nap = NAP if large else 0.0
            # kompose writes the dump itself: 0600, like every dump (docs/operations.md)
            self.out = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, DUMP_MODE)
            os.fchmod(self.out, DUMP_MODE)
        except BaseException:
            self.close()
            raise
        self.thread = threading.Thread(target=self._copy, name="kompose-pipe-copy", daemon=True)
        self.thread.start()

    def _copy(self) -> None:
        block = bytearray(self.BLOCK)
        view = memoryview(block)
        filled = 0
        flushed = 0
        seen_writer = False
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        try:
            while True:
                try:
                    count = os.readv(self.fd, [view[filled:]])
                except BlockingIOError:  # the writer is there, the pipe empty for now
                    seen_writer = True
                    if self.nap:
                        time.sleep(self.nap)
                    else:
                        poller.poll(100)
                    continue
                if count == 0:
                    if seen_writer or self._stop.is_set():
                        break  # the writer closed the pipe (the end of the dump), or the helper is gone
                    time.sleep(0.01)  # no writer yet: an empty FIFO without writers reads as end-of-file
                    continue
                seen_writer = True
                filled += count
                if filled == self.BLOCK:
                    flushed = self._write(view, filled, flushed)
                    filled = 0
                elif self.nap and count < self.BLOCK // 4:
                    # pg_dump writes 4 KiB at a time: let the pipe fill instead of waking for each
                    # (a fast writer fills it between two reads, and then kompose never naps)
                    time.sleep(self.nap)
            if filled:
                self._write(view, filled, flushed)
        except OSError as exc:
            self.error = exc
        finally:
            self._close_pipe()  # a writer still writing gets EPIPE: pg_dump fails, kompose says why

    def _write(self, view: memoryview, length: int, flushed: int) -> int:
        chunk = view[:length]
        written = 0
        while written < length:
            written += os.write(self.out, chunk[written:])
        self.hash.update(chunk)
        self.size += length
        if self.tap is not None:
            try:
                # the block itself (no copy of a MiB per block): the tap must not keep it, the next
                # read overwrites it; the last, partial block as bytes
                self.tap(view.obj if length == len(view.obj) else bytes(chunk))
            except Exception:  # noqa: BLE001 - what the tap learns is optional; the dump is not
                self.tap, self.tap_failed = None, True
        if self.size - flushed >= WRITEBACK_EVERY:
            return start_writeback(self.out, flushed, self.size)
        return flushed

    def poll(self) -> int:
        """Bytes written since the last call (progress)."""
        size = self.size
        grown, self.reported = size - self.reported, size
        return grown

    def finish(self) -> str | None:
        """After the helper exited: the sha256 of everything written, once the copy is done."""
        self._stop.set()
        self.thread.join()
        return None if self.error else self.hash.hexdigest()

    def _close_pipe(self) -> None:
        if self.fd is not None:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = None

    def close(self) -> None:
        self._stop.set()
        if self.thread is not None:
            self.thread.join(5)
            if self.thread.is_alive():  # a writer that never lets go: leave its descriptors to the exit
                self.pipe.unlink(missing_ok=True)
                return
        self._close_pipe()
        if self.out is not None:
            os.close(self.out)
            self.out = None
        self.pipe.unlink(missing_ok=True)


class _NoPipe(Exception):
    """The directory cannot hold a named pipe."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
