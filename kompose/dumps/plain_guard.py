"""A restore reading a plain dump through the guard: the dump's rows counted (scan_file), and the
stream psql is given (GuardedSource): neutralised, or cut off at the first refused line."""

from __future__ import annotations

from collections import deque
from pathlib import Path

from kompose.dumps.plain_sql import Scanner
from kompose.dumps.plain_verdicts import Refused, Scan, psql_has_restrict  # noqa: F401


def scan_file(path: Path, compression: str = "", on_progress=None) -> Scan:
    """Count a plain dump's COPY rows (decompressing on the way). Raises DumpError when unreadable.
    ``on_progress``: told the bytes of the file read (codecs.Source)."""
    from kompose.dumps import codecs

    source = codecs.Source(path, compression, on_progress)
    scanner = Scanner(path.name, rewrite=False)
    try:
        while True:
            chunk = source.read(1 << 20)
            if not chunk:
                break
            scanner.feed(chunk)
        scanner.end()
    finally:
        source.close()
    return scanner.scan


class GuardedSource:
    """A dump stream (codecs.Source) as psql may be given it: neutralised, or cut off at the
    first refused line. close() raises the Refused error after the stream ended early."""

    def __init__(self, source, name: str, restrict_key: str | None = None,
                 known_settings: frozenset[str] | None = None, no_owner: bool = False):
        self._source = source
        self.scanner = Scanner(name, known_settings=known_settings, no_owner=no_owner)
        self.error: Refused | None = None
        self._done = False
        self._pending: deque = deque()
        self._buffers = [bytearray(), bytearray()]
        self._turn = 0
        # psql 13.22/14.19/15.14/16.10/17.6+ in restrict mode runs no meta-command but
        # \unrestrict <key>: whatever this lexer might miss, psql itself refuses
        self._prelude = f"\\restrict {restrict_key}\n".encode() if restrict_key else b""

    @property
    def name(self) -> str:
        return self._source.name

    def fileno(self) -> int:
        import io

        raise io.UnsupportedOperation("the stream is read through kompose's guard")

    def read(self, size: int = 1 << 20):
        """The next piece psql may be given: bytes, or a memoryview of the dump's own bytes (COPY
        data passes without a copy); empty at the end, or once a line was refused.

        The dump is read into two buffers in turn (a fresh MiB per read cost the kernel a page
        fault per 4 KiB): a piece stays valid until read() is called twice more. Send each piece
        before asking for the next one, as the exec's input pump does; never collect them."""
        if self._prelude:
            prelude, self._prelude = self._prelude, b""
            return prelude
        while not self.error:
            while self._pending:
                piece = self._pending.popleft()
                if len(piece):
                    return piece
            if self._done:
                break
            if len(self._buffers[self._turn]) != size:
                self._buffers[self._turn] = bytearray(size)
            buffer = self._buffers[self._turn]
            self._turn ^= 1
            count = self._source.readinto(buffer)
            try:
                if not count:
                    self._done = True
                    return self.scanner.end()
                # a short read (the last one) is copied out: the scanner reads a whole buffer in place
                chunk = buffer if count == size else bytes(memoryview(buffer)[:count])
                self._pending.extend(self.scanner.feed_pieces(chunk))
            except Refused as exc:
                self.error = exc
                self._pending.clear()
                return b""
        return b""

    def close(self) -> None:
        self._source.close()
        if self.error is not None:
            raise self.error

    def abort(self) -> None:
        self._source.abort()
