"""The plain-dump guard: what psql may be given, whatever chunks the stream arrives in."""

from __future__ import annotations

import io

import pytest

from kompose.dumps import codecs, plain_guard, plain_sql
from kompose.dumps.plain_guard import GuardedSource
from kompose.dumps.plain_sql import Refused, Scanner

CREATE_DUMP = b'''--
-- PostgreSQL database dump
--

\\restrict TeDxXgPprp6GjPKgf6PqBRohy52bMU2jeSrM9XPF1KNJDvI2j7jPSjWYyaMxe51

SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
DROP DATABASE app;
CREATE DATABASE app WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE_PROVIDER = libc LOCALE = 'C.UTF-8';
ALTER DATABASE app OWNER TO postgres;
\\unrestrict TeDxXgPprp6GjPKgf6PqBRohy52bMU2jeSrM9XPF1KNJDvI2j7jPSjWYyaMxe51
\\connect app
\\restrict TeDxXgPprp6GjPKgf6PqBRohy52bMU2jeSrM9XPF1KNJDvI2j7jPSjWYyaMxe51
COMMENT ON DATABASE app IS 'hi; DROP DATABASE app';
ALTER DATABASE app SET work_mem TO '5MB';
REVOKE CONNECT,TEMPORARY ON DATABASE app FROM PUBLIC;
GRANT CONNECT ON
  DATABASE app TO reader;
ALTER ROLE reader IN DATABASE app SET statement_timeout TO '5s';
CREATE FUNCTION public.f() RETURNS text LANGUAGE sql AS $_$ SELECT 'DROP DATABASE x; \\! id' $_$;
CREATE TABLE public."My ""T""" (id integer, v text);
COPY public."My ""T""" (id, v) FROM stdin;
1\tline with \\\\! inside
2\t\\.x not the end
\\.
COPY public.t (id) FROM stdin;
\\.
INSERT INTO public.t VALUES (1, 'x'';\\! y');
--
-- PostgreSQL database dump complete
--
'''


def _run(data: bytes, chunk: int, rewrite: bool = True) -> tuple[bytes, Scanner]:
    scanner = Scanner("d.sql", rewrite)
    out = b"".join(scanner.feed(data[i:i + chunk]) for i in range(0, len(data), chunk)) + scanner.end()
    return out, scanner


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 1 << 20])
def test_create_dump_is_neutralised_the_same_way_in_any_chunks(chunk):
    out, scanner = _run(CREATE_DUMP, chunk)
    reference, _ = _run(CREATE_DUMP, 1 << 20)
    assert out == reference
    assert scanner.scan.rows == {'public.My "T"': 2, "public.t": 0}
    assert scanner.scan.neutralised == [
        "DROP DATABASE", "CREATE DATABASE", "ALTER DATABASE", "\\connect", "COMMENT ON DATABASE", "ALTER DATABASE",
        "REVOKE ON DATABASE", "GRANT ON DATABASE", "ALTER ROLE … IN DATABASE",
    ]
    text = out.decode()
    statements = "\n".join(line for line in text.splitlines() if not line.startswith("-- kompose:"))
    for gone in ("DROP DATABASE app;", "CREATE DATABASE app", "\\connect", "\\restrict", "ON DATABASE app",
                 "ALTER DATABASE", "IN DATABASE"):
        assert gone not in statements, gone
    # everything else passes unchanged: the function body, COPY data, the INSERT
    for kept in ("$_$ SELECT 'DROP DATABASE x; \\! id' $_$", "1\tline with \\\\! inside\n2\t\\.x not the end\n\\.\n",
                 "INSERT INTO public.t VALUES (1, 'x'';\\! y');", "-- PostgreSQL database dump complete"):
        assert kept in text, kept
    counted, _ = _run(CREATE_DUMP, chunk, rewrite=False)
    assert _.scan.rows == scanner.scan.rows


@pytest.mark.parametrize("line", [
    b"\\! id", b"\\o | sh", b"\\copy t from program 'id'", b"\\i /etc/passwd", b"\\setenv X 1", b"\\gexec",
    b"SELECT 1 \\g | id", b"SELECT 'a''b' \\! id", b"SELECT E'\\'' ; \\! id", b"\\set ON_ERROR_STOP 0",
    b"COPY t FROM PROGRAM 'id';", b"COPY t TO PROGRAM 'id';", b"SET standard_conforming_strings = off;",
    b"\\connect other",
])
def test_refused(line):
    data = CREATE_DUMP.replace(b"CREATE TABLE public.", line + b"\nCREATE TABLE public.", 1)
    with pytest.raises(Refused, match="kompose does not restore it"):
        _run(data, 5)


def test_meta_commands_inside_quotes_comments_and_copy_data_are_data():
    for text in [b"SELECT $$\n\\! x\n$$;\n", b"SELECT 'a\n\\! x\n';\n", b"/* \\! x /* nested */ \\! y */ SELECT 1;\n",
                 b"SELECT \"a\n\\! x\";\n", b"-- \\! x\n", b"COPY t (a) FROM stdin;\n\\! x\n\\.\n"]:
        out, _ = _run(text, 3)
        assert out == text


def test_a_line_too_long_outside_copy_data_is_refused(monkeypatch):
    monkeypatch.setattr(plain_sql, "LINE_LIMIT", 100)
    with pytest.raises(Refused, match="over"):
        _run(b"SELECT '" + b"x" * 200, 50)


def test_custom_and_gzip_streams_are_not_counted():
    for head in (b"PGDMP\x01\x0e\x00", b"\x1f\x8b\x08\x00"):
        scanner = Scanner("d", rewrite=False)
        scanner.feed(head + b"COPY t FROM stdin;\n1\n\\.\n")
        scanner.end()
        assert scanner.disabled and scanner.scan.rows == {}


def test_guarded_source_starts_with_kompose_restrict_key_and_raises_at_close(tmp_path):
    path = tmp_path / "d.sql"
    path.write_bytes(CREATE_DUMP)
    guarded = GuardedSource(codecs.Source(path), path.name, "k3y")
    first = guarded.read()
    assert first == b"\\restrict k3y\n"
    rest = b"".join(iter(guarded.read, b""))
    assert b"\\restrict" not in rest and b"\\connect" not in rest
    guarded.close()

    path.write_bytes(CREATE_DUMP.replace(b"INSERT", b"\\! id\nINSERT"))
    guarded = GuardedSource(codecs.Source(path), path.name)
    b"".join(iter(guarded.read, b""))
    with pytest.raises(Refused, match="line 29: psql meta-command \\\\! id"):
        guarded.close()
    with pytest.raises(io.UnsupportedOperation):
        guarded.fileno()


@pytest.mark.parametrize("text, known", [
    ("psql (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)", True), ("psql (PostgreSQL) 15.13", False),
    ("psql (PostgreSQL) 16.10", True), ("psql (PostgreSQL) 17.5", False), ("psql (PostgreSQL) 18.0", True),
    ("psql (PostgreSQL) 12.22", False), ("nonsense", False),
])
def test_which_psql_knows_restrict(text, known):
    assert plain_guard.psql_has_restrict(text) is known


def test_sink_counts_rows_as_the_export_streams(tmp_path):
    sink = codecs.Sink(tmp_path / "d.sql")
    for i in range(0, len(CREATE_DUMP), 11):
        sink.write(CREATE_DUMP[i:i + 11])
    sink.close()
    assert sink.rows == {'public.My "T"': 2, "public.t": 0}
    assert plain_guard.scan_file(tmp_path / "d.sql").rows == sink.rows


# ------------------------------------------------ COPY data at memchr speed (plain_sql._find_dot_line, _newlines)

def _oracle_rows(dump: bytes) -> dict[str, int]:
    """The rows psql sends per COPY block, read line by line the slow way: a block ends at the first
    line that is exactly ``\\.`` (LF or CRLF); a last line without a newline is a row unless it is ``\\.``."""
    rows: dict[str, int] = {}
    table = None
    for line in dump.splitlines(keepends=True):
        if table is None:
            if line.startswith(b"COPY ") and line.rstrip().endswith(b"FROM stdin;"):
                table = "public." + line.split()[1].decode().split(".")[-1]
                rows.setdefault(table, 0)
            continue
        if line in (b"\\.\n", b"\\.\r\n") or (not line.endswith(b"\n") and line.rstrip(b"\r") == b"\\."):
            table = None
            continue
        rows[table] += 1
    return rows


def _copy_dump(seed: int, tables: int = 6, most: int = 30000) -> bytes:
    """COPY blocks of every kind the scanner has a path for: long rows and short ones (replace or
    count), none, rows full of backslashes (NULLs, escapes: more than _PROBES a block, so
    bytes.find takes over), rows that look like the end and are not (``\\.x``, `` \\.``, ``\\\\.``),
    CRLF lines and a CRLF end."""
    import random

    rng = random.Random(seed)
    parts = [b"SET standard_conforming_strings = on;\n"]
    for n in range(tables):
        parts.append(f"CREATE TABLE public.t{n} (a int, b text);\nCOPY public.t{n} (a, b) FROM stdin;\n".encode())
        kind = n % 6
        count = rng.choice([0, 1, 3, most // 15, most]) if kind else 0
        for i in range(count):
            if kind == 1:
                row = b"%d\t%s\n" % (i, b" " * 90)  # pgbench's long rows
            elif kind == 2:
                row = b"%d\n" % i  # short rows
            elif kind == 3:
                row = b"%d\t\\N\t\\\\x\\.y\n" % i  # backslashes in every row
            elif kind == 4:
                row = rng.choice([b"\\.x\n", b" \\.\n", b"\\\\.\n", b"a\tb\r\n", b"\\.\\.\n", b"%d\n" % i])
            else:
                row = b"%d\t%s\n" % (i, b"w" * rng.randint(0, 300))
            parts.append(row)
        parts.append(b"\\.\r\n" if kind == 4 else b"\\.\n")
        parts.append(b"\n")
    parts.append(b"SELECT 1;\n")
    return b"".join(parts)


def test_find_dot_line_is_bytes_find():
    import random

    rng = random.Random(7)
    alphabet = [b"\n", b"\\", b".", b"a", b"\r", b"\\N", b"\n\\.", b"\\\\"]
    for _ in range(20000):
        buf = b"".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        buf = bytearray(buf) if rng.random() < 0.5 else buf
        start = rng.randint(0, len(buf))
        assert plain_sql._find_dot_line(buf, start) == buf.find(b"\n\\.", start), (buf, start)


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("chunk", [1, 5, 4093, 65536, 65537, 100_003, 1 << 20])
def test_copy_rows_in_any_chunks_are_what_psql_sends(seed, chunk):
    dump = _copy_dump(seed, most=300 if chunk < 4096 else 30000)
    expected = _oracle_rows(dump)
    out, scanner = _run(dump, chunk)
    assert scanner.scan.rows == expected
    assert out == dump  # nothing to neutralise: the guard passes every byte on as it was
    _, counted = _run(dump, chunk, rewrite=False)
    assert counted.scan.rows == expected


@pytest.mark.parametrize("offset", range(-6, 7))
def test_the_end_of_copy_data_at_a_block_edge(offset):
    """``\\.`` and its newlines cut at every point by the edge of a 64 KiB block, LF and CRLF;
    a block of zero rows; a counting scanner reads a bytearray its owner overwrites after each
    call (the pipe copier's block) in place."""
    for end in (b"\\.\n", b"\\.\r\n"):
        head = b"COPY public.t (a) FROM stdin;\n"
        rows = (b"x" * 63 + b"\n") * 2000
        dump = head + rows + end + b"COPY public.z (a) FROM stdin;\n" + end + b"\\! id\n"
        edge = len(head) + len(rows) + offset  # where the first block ends
        for rewrite in (True, False):
            scanner = Scanner("d.sql", rewrite)
            block = bytearray(edge)
            block[:] = dump[:edge]
            pieces = scanner.feed_pieces(block if not rewrite else bytes(block))
            out = b"".join(bytes(piece) for piece in pieces)
            block[:] = b"\0" * edge  # the copier's next read overwrites its block
            if rewrite:
                with pytest.raises(Refused, match="meta-command"):
                    scanner.feed(dump[edge:])
                continue
            out += scanner.feed(bytearray(dump[edge:])) + scanner.end()
            assert scanner.scan.rows == {"public.t": 2000, "public.z": 0}, (offset, end)


def test_a_copy_block_that_never_ends_counts_its_last_line():
    for tail in (b"1\n2", b"1\n2\r", b"1\n\\.x", b"1\n\\."):
        dump = b"COPY public.t (a) FROM stdin;\n" + tail
        for chunk in (1, 3, 1 << 20):
            out, scanner = _run(dump, chunk)
            assert scanner.scan.rows == _oracle_rows(dump), (tail, chunk)


def test_guarded_source_reads_into_two_buffers_and_each_piece_is_whole_until_the_next(tmp_path):
    """The guard reads a big dump into two reused buffers: each piece, taken before the next read()
    (as the exec's input pump sends it), is exactly what psql would get from the whole dump."""
    dump = b"".join(_copy_dump(seed, most=60000) for seed in (4, 5, 6, 7))
    assert len(dump) > 3 << 20
    path = tmp_path / "d.sql"
    path.write_bytes(dump)
    guarded = GuardedSource(codecs.Source(path), path.name)
    sent = bytearray()
    while True:
        piece = guarded.read(1 << 20)
        if not len(piece):
            break
        sent += piece
    guarded.close()
    assert bytes(sent) == dump
    assert guarded.scanner.scan.rows == _oracle_rows(dump)
