"""The manifest records each table's rows as written in the dump; db:verify and db:drill compare.

A plain dump with a table's rows cut out, its end marker intact: with the manifest left
alone the sha256 tells; with the manifest's sha256 (and size, mtime) brought up to date the
row counts still tell. And the listing never calls a dump changed since its manifest verified.
"""

from __future__ import annotations

import json
import re

import pytest

from kompose.dumps import manifest

pytestmark = pytest.mark.docker

PASSWORD = "pw-rows-1"


@pytest.fixture
def exported(kroot, postgres_factory):
    server = postgres_factory(user="kompose", password=PASSWORD, database="app")
    server.sql("CREATE TABLE a (id int PRIMARY KEY, v text)", database="app")
    server.sql("INSERT INTO a SELECT g, 'a ' || g FROM generate_series(1, 300) g", database="app")
    server.sql("CREATE TABLE \"Mixed Case\" (id int)", database="app")
    server.sql("INSERT INTO \"Mixed Case\" SELECT generate_series(1, 7)", database="app")
    server.sql("CREATE TABLE p (id int) PARTITION BY RANGE (id)", database="app")
    server.sql("CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (100)", database="app")
    server.sql("INSERT INTO p SELECT generate_series(1, 40)", database="app")
    name = kroot.stack("db", compose="services: {}\n",
                       env=f"DB_CONTAINER={server.container.name}\nDB_NAME=app\nDB_USER=kompose\n"
                           f"DB_PASSWORD={PASSWORD}\n")
    assert kroot.run(name, "db:export").code == 0
    (dump,) = kroot.dir("db").glob("app_*.sql")
    return name, dump


def _cut_rows(dump, table: bytes, keep: int) -> None:
    """Leave only ``keep`` rows in the COPY block of ``table``; the end marker stays."""
    data = dump.read_bytes()
    start = data.index(b"COPY " + table + b" ")
    body = data.index(b"\n", start) + 1
    end = data.index(b"\n\\.\n", body) + 1
    rows = data[body:end].splitlines(keepends=True)
    dump.write_bytes(data[:body] + b"".join(rows[:keep]) + data[end:])


def _bring_manifest_up_to_date(dump) -> None:
    """What an attacker who edits the manifest's sha256 (only) would do — and size and mtime with it."""
    path = manifest.path_of(dump)
    data = json.loads(path.read_text())
    data["sha256"] = manifest.sha256_file(dump)
    data["size"] = dump.stat().st_size
    data["mtime_ns"] = dump.stat().st_mtime_ns
    path.write_text(json.dumps(data))


def test_the_manifest_records_every_tables_rows_as_written(exported):
    name, dump = exported
    found = manifest.read(dump)
    assert found.rows == {"public.a": 300, "public.Mixed Case": 7, "public.p1": 40}
    assert found.mtime_ns == dump.stat().st_mtime_ns


def test_rows_cut_out_fail_on_sha256_then_on_row_counts(kroot, exported):
    name, dump = exported
    _cut_rows(dump, b"public.a", 200)

    listing = kroot.run(name, "db:list")
    assert re.search(rf"{re.escape(dump.name)} .* bad \(size", listing.stdout), listing.stdout
    result = kroot.run(name, "db:verify")
    assert result.code == 1 and "differs from its manifest" in result.output, result.output

    _bring_manifest_up_to_date(dump)
    result = kroot.run(name, "db:verify")
    assert result.code == 1, result.output
    assert "row counts differ: public.a: its manifest records 300, it holds 200" in result.output, result.output

    result = kroot.run(name, "db:drill")
    assert result.code == 1, result.output
    assert "public.a: its manifest records 300, the dump holds 200" in result.output, result.output
    # the import compares the rows it streamed with the manifest's: nothing is swapped in
    server_rows = kroot.run(name, "db:import")
    assert server_rows.code == 1, server_rows.output
    assert "public.a: its manifest records 300, the dump holds 200; nothing was swapped" in server_rows.output


def test_an_intact_dump_verifies_and_drills_with_its_row_counts(kroot, exported):
    name, dump = exported
    result = kroot.run(name, "db:verify")
    assert result.code == 0, result.output
    assert "rows of 3 table(s) match its manifest" in result.output, result.output
    result = kroot.run(name, "db:drill")
    assert result.code == 0, result.output
    assert "holds the rows of all 3 table(s)" in result.output, result.output
    listing = kroot.run(name, "db:list")
    assert re.search(rf"{re.escape(dump.name)} .* verified \(header and end marker at export \d{{4}}-\d\d-\d\d "
                     r"\d\d:\d\d, 3 tables' rows counted; size and mtime unchanged since\)", listing.stdout), listing
