"""The direct transport's named pipe: pg_dump writes into it (4 KiB at a time), kompose copies it
into the dump file in 1 MiB writes and hashes it on the way. A real writer process writes into a
real FIFO here; what lands in the file, its sha256 and the error paths are what a user relies on."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest
from pathlib import Path

from kompose.docker import helper as helper_container
from kompose.host import copier as host_copier

WRITER = r"""
import os, random, sys, time
random.seed(int(sys.argv[2]))
total = int(sys.argv[3])
with open(sys.argv[1], "wb", buffering=0) as out:   # opens the FIFO like pg_dump's fopen
    written = 0
    while written < total:
        chunk = os.urandom(min(random.choice([4096, 4096, 4096, 100, 70000]), total - written))
        out.write(chunk)
        written += len(chunk)
        if random.random() < 0.01:
            time.sleep(0.005)
"""


def _copy(tmp_path, seed: int, total: int, output=None):
    pipe = tmp_path / "app_20261123_030000.sql.pipe.partial"
    output = output or tmp_path / "app_20261123_030000.sql.partial"
    copier = host_copier._PipeCopier(pipe, output)
    try:
        assert pipe.is_fifo()
        writer = subprocess.run([sys.executable, "-c", WRITER, str(pipe), str(seed), str(total)],
                                capture_output=True, timeout=60)
        digest = copier.finish()
        return writer, digest, copier
    finally:
        copier.close()
        assert not pipe.exists(), "the pipe is removed whatever happened"


@pytest.mark.parametrize("seed, total", [(1, 0), (2, 1), (3, 4096), (4, 3 << 20), (5, 25 << 20)])
def test_what_the_writer_wrote_is_the_file_and_its_sha256(tmp_path, seed, total):
    writer, digest, copier = _copy(tmp_path, seed, total)
    data = (tmp_path / "app_20261123_030000.sql.partial").read_bytes()
    assert writer.returncode == 0, writer.stderr
    assert len(data) == total == copier.size
    assert digest == hashlib.sha256(data).hexdigest()


def test_a_small_pipe_still_copies_everything(tmp_path, monkeypatch):
    """Where the pipe cannot be enlarged (a user over the kernel's pipe quota), kompose waits for
    data instead of napping: no throttling, same bytes."""
    monkeypatch.setattr(host_copier, "F_SETPIPE_SZ", -1)  # every fcntl with it fails
    writer, digest, copier = _copy(tmp_path, 6, 5 << 20)
    data = (tmp_path / "app_20261123_030000.sql.partial").read_bytes()
    assert copier.nap == 0.0
    assert writer.returncode == 0 and digest == hashlib.sha256(data).hexdigest() and len(data) == 5 << 20


def test_a_file_that_cannot_be_written_stops_the_writer_and_says_why(tmp_path):
    """/dev/full fails every write with ENOSPC, like a full disk: the copier closes the pipe, the
    writer gets a broken pipe instead of writing on forever, and the error is kept for the message."""
    writer, digest, copier = _copy(tmp_path, 7, 50 << 20, output=Path("/dev/full"))
    assert digest is None
    assert copier.error is not None and copier.error.strerror == "No space left on device"
    assert writer.returncode != 0 and b"BrokenPipeError" in writer.stderr


def test_a_writer_that_never_opens_the_pipe_does_not_hang_the_copy(tmp_path):
    """pg_dump failing before it opens its output (a wrong password): the helper exits, the copy ends."""
    pipe = tmp_path / "x.sql.pipe.partial"
    copier = host_copier._PipeCopier(pipe, tmp_path / "x.sql.partial")
    try:
        assert copier.finish() == hashlib.sha256(b"").hexdigest()
    finally:
        copier.close()
    assert not pipe.exists()


def test_a_directory_without_named_pipes_is_reported_for_the_fallback(tmp_path, monkeypatch):
    def no_fifo(path, mode=0o666):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(host_copier.os, "mkfifo", no_fifo)
    with pytest.raises(host_copier._NoPipe, match="Operation not permitted"):
        host_copier._PipeCopier(tmp_path / "x.sql.pipe.partial", tmp_path / "x.sql.partial")
    assert not (tmp_path / "x.sql.partial").exists()


def test_the_fallback_argv_writes_the_file_itself():
    argv = ["pg_dump", "--host=127.0.0.1", "--dbname=app", "--no-sync", "--file=/kompose/a.sql.pipe.partial"]
    assert helper_container._writing_itself(
        argv, "/kompose", Path("a.sql.pipe.partial"), Path("a.sql.partial")
    ) == ["pg_dump", "--host=127.0.0.1", "--dbname=app", "--file=/kompose/a.sql.partial"]


def test_a_tap_sees_every_byte_in_order_and_one_that_fails_is_dropped(tmp_path):
    """The manifest's row counts come from the bytes the copier writes (no second read of the
    dump): the tap gets exactly the file's bytes; a tap that raises stops being called, the copy
    goes on and says so (tap_failed), so the caller counts from the file instead."""
    seen = bytearray()
    pipe, output = tmp_path / "a.sql.pipe.partial", tmp_path / "a.sql.partial"
    copier = host_copier._PipeCopier(pipe, output, tap=seen.extend)
    try:
        writer = subprocess.run([sys.executable, "-c", WRITER, str(pipe), "8", str(5 << 20)], capture_output=True,
                                timeout=60)
        digest = copier.finish()
    finally:
        copier.close()
    assert writer.returncode == 0 and not copier.tap_failed
    assert bytes(seen) == output.read_bytes() and digest == hashlib.sha256(seen).hexdigest()

    calls = []

    def broken(chunk: bytes) -> None:
        calls.append(len(chunk))
        raise ValueError("a line too long to follow")

    copier = host_copier._PipeCopier(pipe, output, tap=broken)
    try:
        subprocess.run([sys.executable, "-c", WRITER, str(pipe), "9", str(3 << 20)], capture_output=True, timeout=60)
        digest = copier.finish()
    finally:
        copier.close()
    assert copier.tap_failed and len(calls) == 1
    assert output.stat().st_size == 3 << 20 and digest == hashlib.sha256(output.read_bytes()).hexdigest()


def test_a_counting_tap_reads_the_reused_block_in_place_and_counts_every_row(tmp_path):
    """The row counter gets the copier's own 1 MiB block (no copy), which the next read overwrites:
    a COPY block whose ``\\.`` line is cut by the edge of a block is still counted right."""
    from kompose.dumps.plain_sql import Scanner

    head = b"SET x = 1;\nCOPY public.t (a) FROM stdin;\n"
    row = b"1\t" + b" " * 61 + b"\n"
    rows = ((1 << 20) - len(head) - 2) // len(row)
    body = head + row * rows
    body += b"x" * ((1 << 20) - 2 - len(body)) + b"\n"  # one long row: "\\.\n" starts 1 byte before the edge
    # the last block is partial and ends in COPY data (a dump cut short): a tap that read the
    # whole reused block would count the previous block's rows behind it again
    dump = body + b"\\.\nCOPY public.u (a) FROM stdin;\n" + row * 40000
    source = tmp_path / "dump.sql"
    source.write_bytes(dump)
    scanner = Scanner("d.sql", rewrite=False)
    pipe, output = tmp_path / "a.sql.pipe.partial", tmp_path / "a.sql.partial"
    copier = host_copier._PipeCopier(pipe, output, tap=scanner.feed)
    try:
        writer = subprocess.run([sys.executable, "-c", "import shutil,sys; shutil.copyfileobj(open(sys.argv[1], 'rb'), "
                                 "open(sys.argv[2], 'wb', buffering=0), 4096)", str(source), str(pipe)],
                                capture_output=True, timeout=60)
        copier.finish()
    finally:
        copier.close()
    scanner.end()
    assert writer.returncode == 0 and not copier.tap_failed and output.read_bytes() == dump
    assert scanner.scan.rows == {"public.t": rows + 1, "public.u": 40000}
