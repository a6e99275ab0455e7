"""The rows of each table in a mariadb-dump / mysqldump plain dump, counted from its INSERT statements.

Why the stream and not the server: ``--single-transaction`` gives the dump one snapshot that no
other session can share (MariaDB has no snapshot export), so counts asked of the server beside
the dump are not the dump's. The rows in the file are exact by construction.

What the dump tools write, which the counter relies on:

- each table's data follows a ``-- Dumping data for table `t``` comment (an empty table has the
  comment and no INSERT: 0 rows);
- an extended INSERT is ``INSERT INTO `t` [(`c`, ...)] VALUES`` and then one row per line
  (``(1,'a'),`` … ``(3,'c');``: MariaDB 10.11's mariadb-dump) or every row on that one line
  (``VALUES (1,'a'),(2,'b');``: mysqldump, older mariadb-dump, ``--skip-extended-insert``);
- string values are escaped with backslashes (the dump session's sql_mode is ''), so a raw
  newline never occurs inside a value: a line that starts with ``(`` inside an INSERT is a row;
- triggers and routines sit between ``DELIMITER ;;`` and ``DELIMITER ;`` and are skipped.

The one-row-per-line form (every MariaDB dump kompose writes) is counted with ``bytes.count``
over whole chunks, memory bounded by the chunk; a line of the one-line form is held whole (its
strings removed by one regular expression, then its '(' counted), so memory is bounded by the
longest INSERT line (mysqldump's net_buffer_length, 1 MB, or one row).
"""

from __future__ import annotations

import re
from pathlib import Path

from kompose.errors import DumpError

CHUNK = 1 << 20
_DATA_FOR = b"-- Dumping data for table `"
_INSERT = b"INSERT INTO `"
# a string value (backslash escapes), removed before the rows of a one-line INSERT are counted
_STRING = re.compile(rb"'[^'\\]*(?:\\.[^'\\]*)*'", re.DOTALL)


def _backquoted(line: bytes, start: int) -> tuple[str, int] | None:
    """(the name, the index after its closing backquote) of a backquoted identifier whose opening
    backquote is just before ``start`` (`` `` `` inside it is one backquote); None when cut short."""
    out = bytearray()
    i = start
    while True:
        j = line.find(b"`", i)
        if j < 0:
            return None
        out += line[i:j]
        if line[j + 1:j + 2] == b"`":
            out += b"`"
            i = j + 2
            continue
        return out.decode("utf-8", "replace"), j + 1


class RowCounter:
    """Feed a dump's bytes in chunks; ``rows`` is {table: rows} after ``end()``."""

    def __init__(self) -> None:
        self.rows: dict[str, int] = {}
        self._buf = b""
        self._table: str | None = None  # the table whose data section this is
        self._delimiter = b";"
        self._in_rows = False  # inside an INSERT written one row per line

    def feed(self, data: bytes) -> None:
        buf = self._buf + data if self._buf else data
        pos = 0
        while pos < len(buf):
            if self._in_rows:
                pos, done = self._rows(buf, pos)
                if not done:
                    break
                continue
            end = buf.find(b"\n", pos)
            if end < 0:
                break
            pos = self._line(buf[pos:end], end)
        self._buf = buf[pos:]

    def end(self) -> None:
        if self._buf.strip() and not self._in_rows:
            self._line(self._buf.rstrip(b"\r\n"), len(self._buf))
        self._buf = b""

    def _line(self, line: bytes, end: int) -> int:
        """Read one line outside an INSERT's rows (``end``: its newline's index); where to go on."""
        if line.startswith(b"DELIMITER "):
            self._delimiter = line[len(b"DELIMITER "):].strip() or b";"
            return end + 1
        if self._delimiter != b";":
            return end + 1
        if line.startswith(_DATA_FOR):
            found = _backquoted(line, len(_DATA_FOR))
            self._table = found[0] if found else None
            if self._table is not None:
                self.rows.setdefault(self._table, 0)
            return end + 1
        if not line.startswith(_INSERT) or self._table is None:
            return end + 1
        found = _backquoted(line, len(_INSERT))
        if found is None or found[0] != self._table:
            return end + 1
        rest = line[found[1]:]
        if rest.rstrip().endswith(b" VALUES"):
            self._in_rows = True
            return end  # the newline before the first row: "\n(" counts it
        at = rest.find(b" VALUES ")
        if at >= 0:  # every row on this one line: the '(' outside strings (values are literals)
            self.rows[self._table] += _STRING.sub(b"", rest[at + len(b" VALUES "):]).count(b"(")
        return end + 1

    def _rows(self, buf: bytes, pos: int) -> tuple[int, bool]:
        """One row per line: the newlines up to the statement's ');' line end (a value never holds
        a raw newline, so each one starts a row; a single-byte count is the fastest there is).
        (where to go on, whether the statement ended in ``buf``)."""
        end = buf.find(b");\n", pos)
        if end >= 0:
            self.rows[self._table] += buf.count(b"\n", pos, end)
            self._in_rows = False
            return end + 3, True
        cut = buf.rfind(b"\n", pos)
        if cut <= pos:
            return pos, False
        self.rows[self._table] += buf.count(b"\n", pos, cut)
        return cut, False


def count_bytes(data: bytes) -> dict[str, int]:
    counter = RowCounter()
    counter.feed(data)
    counter.end()
    return counter.rows


def scan_file(path: Path, compression: str = "") -> dict[str, int]:
    """{table: rows} of a MariaDB / MySQL plain dump (decompressed on the way). Raises DumpError."""
    from kompose.dumps import codecs

    counter = RowCounter()
    try:
        source = codecs.Source(path, compression)
    except OSError as exc:
        raise DumpError(f"cannot read {path.name}: {exc.strerror or exc}") from None
    try:
        while True:
            chunk = source.read(CHUNK)
            if not chunk:
                break
            counter.feed(chunk)
        counter.end()
    except OSError as exc:
        raise DumpError(f"cannot read {path.name}: {exc.strerror or exc}") from None
    finally:
        source.close()
    return counter.rows


def is_dump_file(path: Path, compression: str = "") -> bool:
    """Whether ``path`` is a plain dump of mariadb-dump / mysqldump (its first bytes, decompressed)."""
    from kompose.dumps import codecs
    from kompose.engines.mariadb import sql as mariadb

    try:
        source = codecs.Source(path, compression)
    except OSError:
        return False
    try:
        return mariadb.is_dump(source.read(8192))
    except (OSError, DumpError):
        return False
    finally:
        source.abort()  # read in part: a decompressor stopped early is no error
