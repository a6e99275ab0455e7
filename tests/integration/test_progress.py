"""Issue 18 item 6 in a real terminal (a pty) against real PostgreSQL: every long step shows rich's
bar with its total, percent, bytes and rate — compressed imports, verification (checksum, row
counts, decompression, pg_restore's full read), drills, compressed exports — and none of it reaches
stdout when stdout is not a terminal, nor --json's stdout."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import pytest

from tests.helpers import kompose_env
from tests.integration.test_cli import _db_stack, _run_in_pty

pytestmark = pytest.mark.docker

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _bars(screen: str, label: str) -> list[str]:
    """The frames of the bar whose description starts with ``label``: 'label … 37% 1.2/3.4 MB 5.6 MB/s'."""
    plain = ANSI.sub("", screen).replace("\r", "\n")
    return [line for line in plain.splitlines() if label in line and re.search(r"\d+%", line)]


def _has_bar(screen: str, label: str) -> bool:
    frames = _bars(screen, label)
    return any(re.search(r"[\d.]+/[\d.]+ (bytes|kB|MB)", f) and re.search(r"[\d.]+ (bytes|kB|MB)/s", f)
               for f in frames)


def _seed(pg) -> None:
    pg.sql("CREATE TABLE big AS SELECT g AS id, repeat(md5(g::text), 8) AS body FROM generate_series(1, 60000) g")


@pytest.mark.parametrize("compress", ["gzip", "zstd"])
def test_compressed_export_import_verify_and_drill_show_bars_with_totals(kroot, pg, compress):
    _seed(pg)
    stack = _db_stack(kroot, pg)
    # gzip: pg_dump compresses in the container, so the total is the previous gzip dump's size (the
    # first has none: bytes and rate only); zstd: the host compresses, the total is the database's size
    for _ in range(2):
        code, screen = _run_in_pty(kroot, stack, "db:export", "--transport", "exec", "--compress", compress)
        assert code == 0, screen
    assert _has_bar(screen, "pg_dump"), ANSI.sub("", screen)[-3000:]
    [_, dump] = sorted(p for p in kroot.dir("db").iterdir() if p.name.endswith((".sql.gz", ".sql.zst")))

    code, screen = _run_in_pty(kroot, stack, "db:import")
    assert code == 0, screen
    # the compressed file's bytes against its size: a total, hence a percent, for a compressed import too
    frames = _bars(screen, "restore")
    assert _has_bar(screen, "restore") and any("100%" in f for f in frames), ANSI.sub("", screen)[-3000:]

    code, screen = _run_in_pty(kroot, stack, "db:verify")
    assert code == 0, screen
    for label in (f"check {dump.name}", f"sha256 {dump.name}", f"count the rows of {dump.name}"):
        assert _has_bar(screen, label), (label, ANSI.sub("", screen)[-3000:])

    code, screen = _run_in_pty(kroot, stack, "db:drill")
    assert code == 0, screen
    assert _has_bar(screen, "restore") and _has_bar(screen, f"sha256 {dump.name}"), ANSI.sub("", screen)[-3000:]
    assert pg.password not in screen

    # stdout not a terminal: no bar, no escape sequence in what a script reads
    for command in ("db:verify", "db:drill", "db:import"):
        piped = kroot.run(stack, command)
        assert piped.code == 0 and "━" not in piped.output and "\x1b[" not in piped.output, piped


def test_a_plain_import_bar_counts_what_it_sends_to_the_end(kroot, pg):
    """The bar of a plain import moves (it once stayed at 0 %: the exec sent the file with sendfile(2))."""
    _seed(pg)
    stack = _db_stack(kroot, pg)
    assert kroot.run(stack, "db:export").code == 0
    code, screen = _run_in_pty(kroot, stack, "db:import")
    assert code == 0, screen
    assert any("100%" in frame for frame in _bars(screen, "restore")), ANSI.sub("", screen)[-3000:]


def test_a_custom_archive_verify_shows_pg_restore_reading_it(kroot, pg):
    _seed(pg)
    stack = _db_stack(kroot, pg)
    assert kroot.run(stack, "db:export", "--format", "custom").code == 0
    code, screen = _run_in_pty(kroot, stack, "db:verify")
    assert code == 0, screen
    assert _has_bar(screen, "pg_restore") and _has_bar(screen, "sha256"), ANSI.sub("", screen)[-3000:]


def test_json_stdout_stays_one_document_while_stderr_is_a_terminal(kroot, pg):
    import pty

    _seed(pg)
    stack = _db_stack(kroot, pg)
    assert kroot.run(stack, "db:export", "--compress", "gzip").code == 0
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "kompose", "--root", str(kroot.path), "--json", stack, "db:verify"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave,
        env=kompose_env({"TERM": "xterm-256color", "COLUMNS": "150"}), start_new_session=True)
    os.close(slave)
    stdout, _ = process.communicate(timeout=180)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if not os.read(master, 65536):
                break
        except OSError:
            break
    os.close(master)
    assert process.returncode == 0
    data = json.loads(stdout)
    assert data["kind"] == "result" and "━" not in stdout.decode() and b"\x1b[" not in stdout
