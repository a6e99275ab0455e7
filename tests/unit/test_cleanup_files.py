"""db:cleanup on real files with fixed timestamps, through the real CLI (cleanup never needs Docker)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kompose.dumps import manifest
from kompose.dumps import verify
from tests.helpers import build_tree, run_kompose

PLAIN = (b"--\n-- PostgreSQL database dump\n--\n\n-- Dumped from database version 15.18\n"
         b"-- Dumped by pg_dump version 15.18\n\nSELECT 1;\n\n--\n-- PostgreSQL database dump complete\n--\n\n")

STAMPS = [  # newest first
    "20260310_030000", "20260309_150000", "20260309_030000", "20260308_030000", "20260302_030000",
    "20260220_030000", "20260115_030000",
]


def _root(tmp_path: Path, env: str = "DB_NAME=app\n") -> tuple[Path, Path]:
    root = build_tree(tmp_path / "root", {"app/compose.yaml": "services: {}", "app/.env": env})
    stack = root / "app"
    for stamp in STAMPS:
        path = stack / f"app_{stamp}.sql"
        path.write_bytes(PLAIN)
        if stamp >= "20260302":  # the newer ones were made by this kompose and have manifests
            manifest.write(path, manifest.Manifest(
                file=path.name, format="plain", compression=None, size=len(PLAIN),
                sha256=manifest.sha256_file(path), database="app", stack="app", server_version="15.18",
                pg_dump_version="15.18", container="db", image="postgres:15", started_at="", finished_at="",
                kompose_version="0.1.0", verification=manifest.Verification(True, verify.PLAIN_METHOD, "ok"),
            ))
    (stack / "app_20260311_030000.sql.partial").write_bytes(PLAIN[:10])  # an export running right now
    (stack / "notes.txt").write_text("mine\n")
    (stack / "app_20260101_030000.sql.json").write_text("{}")  # its dump is long gone
    return root, stack


def _left(stack: Path) -> list[str]:
    return sorted(p.name for p in stack.iterdir() if not p.name.startswith("."))


def test_policy_dry_run_shows_every_file_and_changes_nothing(tmp_path: Path) -> None:
    root, stack = _root(tmp_path)
    before = _left(stack)
    result = run_kompose("app", "db:cleanup", "--dry-run", "--keep-daily", "2", "--keep-weekly", "2",
                         "--keep-monthly", "2", root=root)
    assert result.code == 0, result
    assert _left(stack) == before
    lines = [line.strip() for line in result.lines]
    assert "2. retain   policy: keep-daily 2, keep-weekly 2, keep-monthly 2 (command line)" in lines
    for expected in [
        "keep    app_20260310_030000.sql  keep-daily #1  [verified: sha256 matches]",
        "keep    app_20260309_150000.sql  keep-daily #2  [verified: unchanged since export (sha256 not checked)]",
        "remove  app_20260309_030000.sql  no rule keeps it  [verified: unchanged since export (sha256 not checked)]",
        "keep    app_20260308_030000.sql  keep-weekly #1  [verified: unchanged since export (sha256 not checked)]",
        "remove  app_20260302_030000.sql  no rule keeps it  [verified: unchanged since export (sha256 not checked)]",
        "keep    app_20260220_030000.sql  keep-weekly #2  [unverified: no manifest: pg_dump's end marker is there, "
        "nothing else checked]",
        "keep    app_20260115_030000.sql  keep-monthly #1  [unverified: no manifest: pg_dump's end marker is there, "
        "nothing else checked]",
    ]:
        assert any(line.endswith(expected) for line in lines), f"{expected!r} not in\n{result.stdout}"


def test_policy_removes_exactly_the_rest_with_their_manifests(tmp_path: Path) -> None:
    root, stack = _root(tmp_path)
    result = run_kompose("app", "db:cleanup", "--keep-daily", "2", "--keep-weekly", "2", "--keep-monthly", "2",
                         root=root)
    assert result.code == 0, result
    assert _left(stack) == sorted([
        "app_20260310_030000.sql", "app_20260310_030000.sql.json",
        "app_20260309_150000.sql", "app_20260309_150000.sql.json",
        "app_20260308_030000.sql", "app_20260308_030000.sql.json",
        "app_20260220_030000.sql", "app_20260115_030000.sql",
        "app_20260311_030000.sql.partial", "compose.yaml", "notes.txt",
    ])
    assert "removed app_20260101_030000.sql.json (its dump is gone)" in result.stdout


def test_keep_n_still_means_keep_last(tmp_path: Path) -> None:
    root, stack = _root(tmp_path)
    result = run_kompose("app", "db:cleanup", "--keep", "2", root=root)
    assert result.code == 0, result
    assert [n for n in _left(stack) if n.endswith(".sql")] == ["app_20260309_150000.sql", "app_20260310_030000.sql"]
    assert run_kompose("app", "db:cleanup", "--keep", "0", root=root).code == 2


def test_stack_env_policy_and_json_report(tmp_path: Path) -> None:
    root, stack = _root(tmp_path, env="DB_NAME=app\nKOMPOSE_KEEP_LAST=1\nKOMPOSE_KEEP_MONTHLY=3\n")
    result = run_kompose("app", "db:cleanup", "--json", root=root)
    assert result.code == 0, result
    report = json.loads(result.stdout)
    outcome = report["outcomes"][0]
    assert outcome["details"]["policy"] == "keep-last 1, keep-monthly 3 (.env (KOMPOSE_KEEP_*))"
    kept = [d["file"] for d in outcome["details"]["decisions"] if d["keep"]]
    assert kept == ["app_20260310_030000.sql", "app_20260220_030000.sql", "app_20260115_030000.sql"]
    assert [n for n in _left(stack) if n.endswith(".sql")] == sorted(kept)


def test_bad_newest_dump_never_costs_the_good_ones(tmp_path: Path) -> None:
    root, stack = _root(tmp_path)
    # the two newest were changed after their manifests were written (size differs): bad
    for stamp in STAMPS[:2]:
        with open(stack / f"app_{stamp}.sql", "ab") as handle:
            handle.write(b"-- tampered\n")
    result = run_kompose("app", "db:cleanup", "--keep-last", "2", root=root)
    assert result.code == 0, result
    assert [n for n in _left(stack) if n.endswith(".sql")] == ["app_20260308_030000.sql", "app_20260309_030000.sql"]


def _two_exports(tmp_path: Path) -> tuple[Path, Path, Path]:
    """An intact older dump and a newer one, both with manifests as db:export writes them (mtime recorded)."""
    root = build_tree(tmp_path / "root", {"app/compose.yaml": "services: {}", "app/.env": "DB_NAME=app\n"})
    paths = []
    for stamp in ("20260309_030000", "20260310_030000"):
        path = root / "app" / f"app_{stamp}.sql"
        path.write_bytes(PLAIN)
        manifest.write(path, manifest.Manifest(
            file=path.name, format="plain", compression=None, size=len(PLAIN), sha256=manifest.sha256_file(path),
            database="app", stack="app", server_version="15.18", pg_dump_version="15.18", container="db",
            image="postgres:15", started_at="", finished_at="", kompose_version="0.1.0",
            verification=manifest.Verification(True, verify.PLAIN_METHOD, "ok", "2026-03-10T03:00:05+00:00"),
            mtime_ns=path.stat().st_mtime_ns, rows={},
        ))
        paths.append(path)
    return root, paths[0], paths[1]


def _corrupt_keeping_size(path: Path, keep_mtime: bool) -> None:
    stat = path.stat()
    data = bytearray(path.read_bytes())
    data[data.index(b"SELECT 1")] = ord("X")
    path.write_bytes(bytes(data))
    assert path.stat().st_size == stat.st_size
    if keep_mtime:
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


@pytest.mark.parametrize("keep_mtime", [False, True], ids=["mtime-changed", "mtime-put-back"])
def test_a_corrupt_dump_of_the_same_size_is_not_verified_and_never_costs_the_intact_one(tmp_path, keep_mtime):
    root, intact, corrupt = _two_exports(tmp_path)
    _corrupt_keeping_size(corrupt, keep_mtime)

    listing = run_kompose("app", "db:list", root=root)
    row = next(line for line in listing.lines if corrupt.name in line)
    if not keep_mtime:  # the cheap check (size, mtime) sees it at once
        assert "verified" not in row.replace("not verified", "") and "changed" in row, listing
    assert "verified (header and end marker at export 2026-03-10 03:00" in next(
        line for line in listing.lines if intact.name in line), listing

    result = run_kompose("app", "db:cleanup", "--keep-last", "1", root=root)
    assert result.code == 0, result
    assert intact.exists(), result  # the only intact dump survives: its sha256 matched
    if keep_mtime:  # only the sha256 shows it, and a dump known bad is not kept
        assert "sha256 differs" in result.output, result
