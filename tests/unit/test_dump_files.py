"""Dump files without Docker: names, compression on the host, structure checks, manifests, health."""

from __future__ import annotations

import gzip
import shutil
import subprocess
from datetime import datetime
import os
from pathlib import Path

import pytest

from kompose.dumps import codecs
from kompose.dumps import files as dumps
from kompose.dumps import manifest
from kompose.dumps import verify
from kompose.errors import DumpError, UsageError

PLAIN = (
    b"--\n-- PostgreSQL database dump\n--\n\n\\restrict abc\n\n"
    b"-- Dumped from database version 16.4 (Debian 16.4-1)\n-- Dumped by pg_dump version 16.4 (Debian 16.4-1)\n\n"
    b"SET statement_timeout = 0;\n" + b"INSERT INTO t VALUES (1);\n" * 50000
    + b"\n--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict abc\n\n"
)


def test_names_of_every_kind() -> None:
    when = datetime(2026, 3, 1, 3, 0, 0)
    for fmt, compression, name in [("plain", "", "app_20260301_030000.sql"), ("custom", "", "app_20260301_030000.dump"),
                                   ("plain", "gzip", "app_20260301_030000.sql.gz"),
                                   ("plain", "zstd", "app_20260301_030000.sql.zst")]:
        path = dumps.dump_path(Path("/nonexistent"), "app", fmt, when, compression)
        assert path.name == name
        parsed = dumps.parse(path)
        assert (parsed.database, parsed.timestamp, parsed.format, parsed.compression) == ("app", when, fmt, compression)
        assert dumps.manifest_path(path).name == name + ".json"
    assert dumps.parse(Path("app_20260301_030000.sql.json")) is None
    assert dumps.parse(Path("app_20260301_030000.sql.gz.partial")) is None


def test_a_taken_name_moves_on_by_a_second(tmp_path: Path) -> None:
    (tmp_path / "app_20260301_030000.sql.json").write_text("{}")  # even an orphan manifest takes the name
    assert dumps.dump_path(tmp_path, "app", "plain", datetime(2026, 3, 1, 3, 0, 0)).name == "app_20260301_030001.sql"


@pytest.mark.parametrize("value, expected", [
    ("gzip", codecs.Compression("gzip", 1)), ("zstd", codecs.Compression("zstd", 3)),
    ("gzip:9", codecs.Compression("gzip", 9)), ("ZSTD:19", codecs.Compression("zstd", 19)),
    ("none", None), ("", None), (None, None),
])
def test_parse_compression(value, expected) -> None:
    assert codecs.parse(value) == expected


@pytest.mark.parametrize("value", ["lz4", "gzip:0", "gzip:10", "zstd:x", "zstd:22"])
def test_bad_compression_is_a_usage_error(value: str) -> None:
    with pytest.raises(UsageError, match="--compress"):
        codecs.parse(value)


def _write(path: Path, data: bytes, codec: str) -> Path:
    sink = codecs.Sink(path, codec, 3 if codec else 0)
    for start in range(0, len(data), 70000):  # odd chunk sizes, as the exec stream delivers them
        sink.write(data[start:start + 70000])
    sink.close()
    return path


@pytest.mark.parametrize("codec", ["", "zstd"])
def test_sink_source_round_trip(tmp_path: Path, codec: str) -> None:
    if codec and not shutil.which("zstd"):
        pytest.fail("zstd is not installed on this host (Debian: apt-get install zstd)")
    path = _write(tmp_path / "d", PLAIN, codec)
    assert b"".join(codecs.iter_plain(path, codec)) == PLAIN
    assert dumps.detect(path) == ("plain", codec)
    dumps.check_complete(path, "plain", codec)
    if not codec:
        assert path.read_bytes() == PLAIN


def test_sink_hashes_what_it_writes(tmp_path: Path) -> None:
    sink = codecs.Sink(tmp_path / "d")
    sink.write(PLAIN)
    sink.close()
    assert sink.sha256 == manifest.sha256_file(tmp_path / "d")


@pytest.mark.parametrize("codec", ["gzip", "zstd"])
def test_truncated_compressed_dump_is_incomplete(tmp_path: Path, codec: str) -> None:
    whole = tmp_path / "whole"
    if codec == "gzip":
        whole.write_bytes(gzip.compress(PLAIN, 1))
    else:
        subprocess.run(["zstd", "-q", "-3", "-o", str(whole), "-"], input=PLAIN, check=True)
    cut = tmp_path / "cut"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(DumpError, match="cannot be decompressed|incomplete"):
        dumps.check_complete(cut, "plain", codec)
    structure = verify.check_plain(cut, codec)
    assert not structure.ok and "cannot be decompressed" in structure.detail
    assert verify.check_plain(whole, codec).ok


def test_plain_structure_and_versions(tmp_path: Path) -> None:
    good = tmp_path / "good.sql"
    good.write_bytes(PLAIN)
    structure = verify.check_plain(good)
    assert structure.ok
    assert (structure.server_version, structure.pg_dump_version) == ("16.4 (Debian 16.4-1)", "16.4 (Debian 16.4-1)")
    truncated = tmp_path / "cut.sql"
    truncated.write_bytes(PLAIN[:-200])
    assert verify.check_plain(truncated).detail == "it does not end with pg_dump's closing line (truncated?)"
    foreign = tmp_path / "foreign.sql"
    foreign.write_bytes(b"-- my own notes\nSELECT 1;\n")
    assert "no pg_dump header" in verify.check_plain(foreign).detail


def _custom_header(version: tuple[int, int, int], server: str, tool: str) -> bytes:
    """A custom archive's header, built by the layout pg_dump writes (int = sign byte + 4 bytes LE)."""
    def integer(value: int) -> bytes:
        return bytes([1 if value < 0 else 0]) + abs(value).to_bytes(4, "little")

    def text(value: str) -> bytes:
        return integer(len(value.encode())) + value.encode()

    head = b"PGDMP" + bytes(version) + bytes([4, 8, 1])
    head += bytes([1]) if version >= (1, 15, 0) else integer(-1)
    head += b"".join(integer(v) for v in (17, 23, 11, 23, 10, 126, 0))
    return head + text("app") + text(server) + text(tool) + b"\x00" * 64


@pytest.mark.parametrize("version", [(1, 14, 0), (1, 15, 0), (1, 16, 0)])
def test_custom_header_versions(version) -> None:
    head = _custom_header(version, "17.2 (Debian 17.2-1)", "17.2 (Debian 17.2-1)")
    assert verify.parse_custom_header(head) == ("17.2 (Debian 17.2-1)", "17.2 (Debian 17.2-1)")
    assert verify.parse_custom_header(head[:40]) is None
    assert verify.parse_custom_header(b"not an archive") is None


@pytest.mark.parametrize("text, number", [("15.18 (Debian 15.18-0+deb12u1)", 150000), ("9.6.24", 90600),
                                          ("17beta1", 170000), ("", None), (None, None), ("x", None)])
def test_version_numbers(text, number) -> None:
    assert verify.version_number(text) == number


def _manifest_for(path: Path, ok: bool = True) -> manifest.Manifest:
    return manifest.Manifest(
        file=path.name, format="plain", compression=None, size=path.stat().st_size,
        sha256=manifest.sha256_file(path), database="app", stack="app", server_version="16.4",
        pg_dump_version="16.4", container="db", image="postgres:16", started_at="2026-03-01T03:00:00+00:00",
        finished_at="2026-03-01T03:00:05+00:00", kompose_version="0.1.0",
        verification=manifest.Verification(ok, verify.PLAIN_METHOD, "fine" if ok else "broken"),
    )


def test_manifest_round_trip_and_health(tmp_path: Path) -> None:
    path = tmp_path / "app_20260301_030000.sql"
    path.write_bytes(PLAIN)
    dump = dumps.parse(path)
    # no manifest: nothing was checked, whatever the end marker says
    assert manifest.health(dump).state == "unverified"
    assert not manifest.health(dump).good
    written = manifest.write(path, _manifest_for(path))
    assert written.name == "app_20260301_030000.sql.json"
    assert not list(tmp_path.glob("*.partial"))
    assert manifest.read(path) == _manifest_for(path)
    assert manifest.health(dump).state == "verified"
    assert "header and end marker at export" in manifest.health(dump).detail  # what, and when
    path.write_bytes(PLAIN + b"-- one more line\n")
    assert manifest.health(dump).state == "bad"
    written.write_text("{ not json")
    assert manifest.health(dump).state == "unverified"  # a broken manifest says nothing about the dump
    path.write_bytes(PLAIN[:100])
    written.unlink()
    assert manifest.health(dump).state == "bad"


def test_a_dump_changed_in_place_is_not_verified(tmp_path: Path) -> None:
    path = tmp_path / "app_20260301_030000.sql"
    path.write_bytes(PLAIN)
    dump = dumps.parse(path)
    data = _manifest_for(path)
    data.mtime_ns = path.stat().st_mtime_ns
    manifest.write(path, data)
    assert manifest.health(dump).state == "verified"
    assert manifest.health(dump, checked=True).state == "verified"
    assert "sha256 matches" in manifest.health(dump, checked=True).detail
    # one byte changed, same size: the mtime tells at once, the sha256 whatever the mtime says
    corrupt = bytearray(PLAIN)
    corrupt[-40] ^= 0x01
    path.write_bytes(bytes(corrupt))
    os.utime(path, ns=(data.mtime_ns + 5_000_000_000, data.mtime_ns + 5_000_000_000))
    assert manifest.health(dump).state == "changed" and not manifest.health(dump).good
    os.utime(path, ns=(data.mtime_ns, data.mtime_ns))  # its mtime put back as it was
    assert manifest.health(dump).state == "verified"
    assert manifest.health(dump, checked=True).state == "bad"


def test_orphan_manifests(tmp_path: Path) -> None:
    (tmp_path / "app_20260301_030000.sql").write_bytes(PLAIN)
    for name in ("app_20260301_030000.sql.json", "app_20260302_030000.sql.gz.json", "other_20260302_030000.sql.json",
                 "notes.json"):
        (tmp_path / name).write_text("{}")
    assert [p.name for p in dumps.orphan_manifests(tmp_path, "app")] == ["app_20260302_030000.sql.gz.json"]
