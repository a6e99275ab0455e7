"""The mark a swap leaves while the live database may refuse connections, and what status makes of it."""

from __future__ import annotations

import json
import os
import subprocess

from kompose.host import swap_mark
from kompose.reports.status import _closed_by_swap


def test_the_mark_is_written_whole_and_removed(tmp_path):
    path = swap_mark.mark_path(tmp_path)
    swap_mark.write_mark(path, "swap: app -> app__kompose_prev")
    record = json.loads(path.read_text())
    assert record["pid"] == os.getpid() and record["step"].startswith("swap")
    assert [p.name for p in tmp_path.iterdir()] == [swap_mark.MARK_FILE]  # no temporary file left
    swap_mark.clear_mark(path)
    swap_mark.clear_mark(path)  # twice is fine
    assert swap_mark.read_mark(tmp_path) is None


def test_status_tells_a_swap_under_way_from_an_interrupted_one(tmp_path):
    assert _closed_by_swap(tmp_path, "app") is None
    swap_mark.write_mark(swap_mark.mark_path(tmp_path), "swap")
    assert "under way" in _closed_by_swap(tmp_path, "app")
    dead = subprocess.Popen(["true"])
    dead.wait()
    record = json.loads(swap_mark.mark_path(tmp_path).read_text())
    swap_mark.mark_path(tmp_path).write_text(json.dumps({**record, "pid": dead.pid}))
    message = _closed_by_swap(tmp_path, "app")
    assert "app may be refusing connections" in message and "any db command" in message


def test_an_unreadable_mark_still_flags_the_stack(tmp_path):
    swap_mark.mark_path(tmp_path).write_bytes(b"\xff\xfe not json")
    assert "may be refusing connections" in _closed_by_swap(tmp_path, "app")
