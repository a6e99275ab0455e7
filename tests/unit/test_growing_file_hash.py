"""The direct transport hashes a plain dump while pg_dump appends to it, so the manifest needs no
second read of a file of many GB. A real writer process appends here; the digest must equal
the file's own sha256, whatever moments the polls fall on."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time

import pytest

from kompose.host import copier as host_copier

WRITER = r"""
import os, random, sys, time
random.seed(int(sys.argv[2]))
with open(sys.argv[1], "ab", buffering=0) as out:
    for _ in range(int(sys.argv[3])):
        out.write(os.urandom(random.randint(1, 300_000)))
        time.sleep(random.random() / 200)
"""


def _follow(path, monkeypatch, seed: int, writes: int, hashing: bool = True):
    # small write-back steps, so fadvise(DONTNEED) runs between the hashing reads many times
    monkeypatch.setattr(host_copier, "WRITEBACK_EVERY", 256 << 10)
    path.write_bytes(b"")
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(seed), str(writes)])
    watcher = host_copier._Writeback(path, hashing)
    hashed_while_writing = 0
    grown = 0
    try:
        while writer.poll() is None:
            grown += watcher.poll()
            hashed_while_writing = watcher.hashed
            time.sleep(0.003)
        assert writer.returncode == 0
        grown += watcher.poll()
        return watcher.finish(), hashed_while_writing, grown
    finally:
        watcher.close()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_hash_of_a_growing_file_equals_the_finished_files(tmp_path, monkeypatch, seed):
    path = tmp_path / "dump.sql.partial"
    digest, hashed_while_writing, grown = _follow(path, monkeypatch, seed, writes=120)
    data = path.read_bytes()
    assert digest == hashlib.sha256(data).hexdigest()
    assert grown == len(data)
    # the point of it: most of the file was hashed before the writer finished
    assert hashed_while_writing > len(data) // 2


def test_without_hashing_there_is_no_digest(tmp_path, monkeypatch):
    path = tmp_path / "dump.dump.partial"
    digest, hashed, _ = _follow(path, monkeypatch, 4, writes=20, hashing=False)
    assert digest is None and hashed == 0


def test_a_file_that_shrank_gets_no_digest_so_the_manifest_reads_it_itself(tmp_path):
    path = tmp_path / "dump.sql.partial"
    path.write_bytes(b"x" * 1000)
    watcher = host_copier._Writeback(path, True)
    try:
        watcher.poll()
        path.write_bytes(b"y" * 10)  # rewritten, not appended: what was hashed no longer holds
        assert watcher.finish() is None
    finally:
        watcher.close()
