"""Dump files: naming, parsing, listing, format detection, completeness and retention."""

from __future__ import annotations

import fnmatch
import os
from datetime import datetime
from pathlib import Path

import pytest

from kompose.dumps import files as dumps
from kompose.errors import ConfigError, DumpError

KEY = "aBcD" * 16
COMPLETE = (
    "--\n-- PostgreSQL database dump\n--\n\n"
    f"\\restrict {KEY}\n\n"
    "SET statement_timeout = 0;\n"
    "COPY public.t (v) FROM stdin;\nrow one\n\\.\n\n"
    "--\n-- PostgreSQL database dump complete\n--\n\n"
    f"\\unrestrict {KEY}\n\n"
).encode()
# pg_dump before 15.14 writes neither \restrict nor \unrestrict
COMPLETE_OLD = COMPLETE.replace(f"\\restrict {KEY}\n\n".encode(), b"").replace(f"\\unrestrict {KEY}\n\n".encode(), b"")
WHEN = datetime(2024, 1, 31, 3, 0, 5)


def write(path: Path, content: bytes | str) -> Path:
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


# --- naming ---------------------------------------------------------------------------------------


def test_dump_path_names_and_next_free_name(tmp_path: Path):
    first = dumps.dump_path(tmp_path, "app", "plain", WHEN)
    assert first == tmp_path / "app_20240131_030005.sql"
    assert dumps.dump_path(tmp_path, "app", "custom", WHEN).name == "app_20240131_030005.dump"
    write(first, COMPLETE)
    assert dumps.dump_path(tmp_path, "app", "plain", WHEN).name == "app_20240131_030006.sql"
    write(tmp_path / "app_20240131_030006.sql.partial", b"")  # an export still running
    assert dumps.dump_path(tmp_path, "app", "plain", WHEN).name == "app_20240131_030007.sql"
    assert dumps.dump_path(tmp_path, "my app's \"db\"", "plain", WHEN).name == "my app's \"db\"_20240131_030005.sql"


@pytest.mark.parametrize("database", ["../escape", "a/b", "/abs", "nul\x00"])
def test_names_that_cannot_be_a_file_name_are_config_errors(tmp_path: Path, database: str):
    with pytest.raises(ConfigError, match="cannot name a dump file"):
        dumps.dump_path(tmp_path, database, "plain", WHEN)


def test_stale_partial_glob_matches_only_this_databases_interrupted_exports():
    pattern = dumps.stale_partial_glob("app")
    names = {
        "app_20240131_030005.sql.partial": True,
        "app_20240131_030005.dump.partial": True,
        "app_20240131_030005.sql": False,
        "app_notes.partial": False,
        "download.partial": False,
        "other_20240131_030005.sql.partial": False,
        "app_x_20240131_030005.sql.partial": False,
    }
    assert {name: fnmatch.fnmatchcase(name, pattern) for name in names} == names
    brackets = dumps.stale_partial_glob("db[1]*")
    assert fnmatch.fnmatchcase("db[1]*_20240131_030005.sql.partial", brackets)
    assert not fnmatch.fnmatchcase("db1x_20240131_030005.sql.partial", brackets)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("app_20240131_030005.sql", ("app", WHEN, "plain")),
        ("app_20240131_030005.dump", ("app", WHEN, "custom")),
        ("my_app_20240131_030005.sql", ("my_app", WHEN, "plain")),
        ("app_20240131_030005_20240131_030005.sql", ("app_20240131_030005", WHEN, "plain")),
        ("app_20241331_030005.sql", None),  # no 13th month
        ("app_20240131_030005.sql.partial", None),
        ("app_20240131_030005.sql.gz", ("app", WHEN, "plain")),  # compressed plain dumps (--compress)
        ("app_20240131_030005.sql.json", None),  # a manifest
        ("app_latest.sql", None),
        ("_20240131_030005.sql", None),
    ],
)
def test_parse(name: str, expected):
    dump = dumps.parse(Path("/d") / name)
    assert (None if dump is None else (dump.database, dump.timestamp, dump.format)) == expected


def test_list_dumps_newest_first_by_the_name_not_the_mtime(tmp_path: Path):
    names = ["app_20240101_000000.sql", "app_20240301_000000.dump", "app_20240201_000000.sql",
             "app_20240401_000000.sql.partial", "other_20240501_000000.sql", "notes.txt"]
    for index, name in enumerate(names):
        os.utime(write(tmp_path / name, COMPLETE), (1_000_000 - index, 1_000_000 - index))
    (tmp_path / "app_20240601_000000.sql").mkdir()  # a directory is never a dump
    assert [d.path.name for d in dumps.list_dumps(tmp_path, "app")] == [
        "app_20240301_000000.dump", "app_20240201_000000.sql", "app_20240101_000000.sql"]
    assert [d.database for d in dumps.list_dumps(tmp_path)] == ["other", "app", "app", "app"]
    assert dumps.list_dumps(tmp_path / "missing", "app") == []


def test_retention_keeps_the_newest(tmp_path: Path):
    for name in ("a_20240101_000000.sql", "a_20240102_000000.sql", "a_20240103_000000.dump"):
        write(tmp_path / name, COMPLETE)
    listed = dumps.list_dumps(tmp_path, "a")
    assert [d.path.name for d in dumps.to_remove(listed, 1)] == ["a_20240102_000000.sql", "a_20240101_000000.sql"]
    assert [d.path.name for d in dumps.to_remove(listed, 2)] == ["a_20240101_000000.sql"]
    assert dumps.to_remove(listed, 3) == dumps.to_remove(listed, 10) == []


# --- format and completeness -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content, expected",
    [
        (COMPLETE, "plain"),
        (b"\n\n--\n-- PostgreSQL database dump\n", "plain"),
        (b"PGDMP\x01\x0e\x00\x04\x08\x01\x01", "custom"),
        (b"", "is empty"),
        (b"\x1f\x8b\x08\x00\x00\x00", "compressed"),
        (b"\x28\xb5\x2f\xfd\x00", "compressed"),
        (b"CREATE TABLE t (x int);\n", "not a PostgreSQL dump"),
        (b"\x00\x01\x02garbage", "not a PostgreSQL dump"),
    ],
)
def test_detect_format(tmp_path: Path, content: bytes, expected: str):
    path = write(tmp_path / "x.sql", content)
    if expected in ("plain", "custom"):
        assert dumps.detect_format(path) == expected
    else:
        with pytest.raises(DumpError, match=expected):
            dumps.detect_format(path)


def test_detect_format_of_a_directory_and_a_missing_file(tmp_path: Path):
    with pytest.raises(DumpError, match="is a directory"):
        dumps.detect_format(tmp_path)
    with pytest.raises(DumpError, match="cannot read"):
        dumps.detect_format(tmp_path / "missing.sql")


@pytest.mark.parametrize(
    "content",
    [COMPLETE, COMPLETE_OLD, COMPLETE + b"\n\n", COMPLETE_OLD[: COMPLETE_OLD.index(b"dump complete") + 13] + b"\n"],
    ids=["restrict", "before-15.14", "blank-lines-after", "no-trailer"],
)
def test_complete_plain_dumps(tmp_path: Path, content: bytes):
    dumps.check_complete(write(tmp_path / "a.sql", content), "plain")


def test_complete_dump_with_a_long_body(tmp_path: Path):
    body = b"".join(f"{i}\tvalue {i}\n".encode() for i in range(50_000))
    dumps.check_complete(write(tmp_path / "a.sql", COMPLETE.replace(b"row one\n", body)), "plain")


@pytest.mark.parametrize(
    "content, problem",
    [
        (b"", "is empty"),
        (COMPLETE[: len(COMPLETE) // 2], "does not end with pg_dump's closing line"),
        (COMPLETE[: COMPLETE.index(b"-- PostgreSQL database dump complete") + 20], "does not end"),
        # truncated right after a data row that quotes the closing line
        (COMPLETE.split(b"row one")[0] + b"-- PostgreSQL database dump complete\n", "lacks the \\\\unrestrict"),
        (COMPLETE_OLD.split(b"row one")[0] + b"-- PostgreSQL database dump complete\nmore rows\n", "does not end"),
        # the trailer lost, or from another dump
        (COMPLETE.replace(f"\\unrestrict {KEY}".encode(), b""), "lacks the \\\\unrestrict"),
        (COMPLETE.replace(f"\\unrestrict {KEY}".encode(), b"\\unrestrict otherkey"), "lacks the \\\\unrestrict"),
    ],
)
def test_incomplete_plain_dumps(tmp_path: Path, content: bytes, problem: str):
    with pytest.raises(DumpError, match=problem):
        dumps.check_complete(write(tmp_path / "a.sql", content), "plain")


def test_format_must_match(tmp_path: Path):
    with pytest.raises(DumpError, match="is a plain dump, expected custom"):
        dumps.check_complete(write(tmp_path / "a.dump", COMPLETE), "custom")
    dumps.check_complete(write(tmp_path / "b.dump", b"PGDMP\x01\x0e\x00" + b"\x00" * 100), "custom")
