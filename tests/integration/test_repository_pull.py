"""db:pull as a stream (issue 20): restic dump writes the copy into ``<dump>.partial`` in the dump
directory, kompose hashes it as it is written and renames it only after the sha256 matched the
manifest's. A damaged copy or a killed pull leaves no file that looks complete; a terminal shows
a bar. Real restic, a real local repository; the dumps are synthetic (no database is needed to
pull: that is the lost-host case)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers import kompose_env, restic_processes
from tests.integration.test_progress import ANSI, _bars, _has_bar
from tests.integration.test_cli import _run_in_pty
from tests.integration.test_repositories import CANARY, _init, _restic, _snapshots

NAME = "shop_20260101_030000.sql"


def _stack(kroot, repo: str) -> str:
    return kroot.stack("db", compose="services: {}\n",
                       env=f"DB_NAME=shop\nKOMPOSE_REPOSITORIES={repo}\nRESTIC_PASSWORD={CANARY}\n")


def _write_dump(path: Path, megabytes: int) -> str:
    """A plain dump shaped like pg_dump's, of random (incompressible) rows, and its manifest; its sha256."""
    from kompose.dumps import manifest

    with open(path, "wb") as out:
        out.write(b"--\n-- PostgreSQL database dump\n--\n\nCOPY public.t (id, body) FROM stdin;\n")
        block = os.urandom(1 << 20).hex().encode()
        for number in range(megabytes // 2):
            out.write(f"{number}\t".encode() + block + b"\n")
        out.write(b"\\.\n\n--\n-- PostgreSQL database dump complete\n--\n\n")
    path.chmod(0o600)
    sha = manifest.sha256_file(path)
    manifest.write(path, manifest.Manifest(
        file=path.name, format="plain", compression=None, size=path.stat().st_size, sha256=sha, database="shop",
        stack="db", server_version="15", pg_dump_version="15", container="c", image="i", started_at="",
        finished_at="", kompose_version="test",
        verification=manifest.Verification(True, "plain: header and end-of-dump marker", "", ""),
    ))
    return sha


def _pushed(kroot, tmp_path: Path, megabytes: int) -> tuple[str, str, Path, str]:
    """(repository, stack, dump path, sha256): a dump pushed, then gone from the host with its manifest."""
    repo = str(tmp_path / "repo")
    _init(repo)
    stack = _stack(kroot, repo)
    dump = kroot.dir("db") / NAME
    sha = _write_dump(dump, megabytes)
    pushed = kroot.run(stack, "db:push", NAME)
    assert pushed.code == 0, pushed
    dump.unlink()
    Path(f"{dump}.json").unlink()
    return repo, stack, dump, sha


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("shop_"))


def _restic_dumps() -> list[int]:
    return _restic_running(b"dump")


def test_pull_streams_into_a_partial_file_and_renames_it_after_the_check(kroot, tmp_path):
    repo, stack, dump, sha = _pushed(kroot, tmp_path, 120)
    argv = [sys.executable, "-m", "kompose", "--root", str(kroot.path), stack, "db:pull"]
    process = subprocess.Popen(argv, env=kompose_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
    partial = dump.with_name(dump.name + ".partial")
    seen: set[str] = set()
    while process.poll() is None:  # while restic writes, only the .partial name exists, in the dump directory
        names = set(_leftovers(dump.parent))
        seen |= names
        assert dump.name not in names or Path(f"{dump}.json").exists()
        time.sleep(0.002)
    output = process.stdout.read().decode()
    assert process.returncode == 0, output
    assert partial.name in seen, seen
    assert not any(name.startswith(".kompose-pull-") for name in os.listdir(dump.parent))
    assert _leftovers(dump.parent) == [dump.name, f"{dump.name}.json"]
    assert hashlib.sha256(dump.read_bytes()).hexdigest() == sha
    assert json.loads(Path(f"{dump}.json").read_text())["sha256"] == sha
    assert dump.stat().st_mode & 0o777 == 0o600 and Path(f"{dump}.json").stat().st_mode & 0o777 == 0o600
    assert "matches its manifest" in output and CANARY not in output


def test_a_copy_whose_bytes_differ_from_its_manifest_leaves_no_file(kroot, tmp_path):
    repo = str(tmp_path / "repo")
    _init(repo)
    stack = _stack(kroot, repo)
    dump = kroot.dir("db") / NAME
    sha = _write_dump(dump, 4)
    with open(dump, "r+b") as handle:  # damaged after its manifest was written: the copy lies
        handle.seek(1000)
        handle.write(b"X")
    made = subprocess.run(
        ["restic", "backup", "--tag", "kompose", "--tag", f"stack:{stack}", "--tag", "db:shop", "--tag",
         "time:20260101_030000", "--tag", f"sha256:{sha}", "--tag", "verified", dump.name, f"{dump.name}.json"],
        cwd=dump.parent, capture_output=True, text=True,
        env={**os.environ, "RESTIC_REPOSITORY": repo, "RESTIC_PASSWORD": CANARY})
    assert made.returncode == 0, made.stderr
    dump.unlink()
    Path(f"{dump}.json").unlink()
    pulled = kroot.run(stack, "db:pull")
    assert pulled.code == 1 and "differs from its manifest" in pulled.stderr, pulled
    assert "Traceback" not in pulled.output
    assert _leftovers(dump.parent) == []


def test_a_killed_pull_leaves_no_file_that_looks_complete_and_the_next_pull_works(kroot, tmp_path):
    repo, stack, dump, sha = _pushed(kroot, tmp_path, 300)
    argv = [sys.executable, "-m", "kompose", "--root", str(kroot.path), stack, "db:pull"]
    process = subprocess.Popen(argv, env=kompose_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    partial = dump.with_name(dump.name + ".partial")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (partial.exists() and partial.stat().st_size > (8 << 20)):
        time.sleep(0.002)
    assert partial.exists(), "restic dump never wrote the partial file"
    # kompose and its restic (in a session of its own), both at once: as a power cut would
    os.killpg(process.pid, signal.SIGKILL)
    for pid in _restic_dumps():
        os.kill(pid, signal.SIGKILL)
    process.wait()
    assert not dump.exists() and not Path(f"{dump}.json").exists()
    listed = kroot.run(stack, "db:list", "--json")
    assert listed.code == 0 and NAME not in listed.stdout, listed
    again = kroot.run(stack, "db:pull")
    assert again.code == 0 and "interrupted pull" in again.stdout, again
    assert _leftovers(dump.parent) == [dump.name, f"{dump.name}.json"]
    assert hashlib.sha256(dump.read_bytes()).hexdigest() == sha
    assert len(_snapshots(repo)) == 1


def test_pull_shows_a_bar_with_its_total_on_a_terminal(kroot, tmp_path):
    repo, stack, dump, sha = _pushed(kroot, tmp_path, 60)
    code, screen = _run_in_pty(kroot, stack, "db:pull")
    assert code == 0, screen
    assert _has_bar(screen, f"pull {dump.name}"), ANSI.sub("", screen)[-3000:]
    assert any("100%" in frame for frame in _bars(screen, f"pull {dump.name}")), ANSI.sub("", screen)[-3000:]
    dump.unlink()
    Path(f"{dump}.json").unlink()
    piped = kroot.run(stack, "db:pull")
    assert piped.code == 0 and "━" not in piped.output and "\x1b[" not in piped.output, piped


def _restic_running(word: bytes) -> list[int]:
    return restic_processes(word)


def _leave_a_stale_lock(kroot, stack: str, repo: str, *command: str, restic_command: bytes) -> bool:
    """A real kill: kompose and its restic die at once, as a power cut would, once restic has locked
    the repository; the lock stays behind. Whether it is an exclusive one."""
    argv = [sys.executable, "-m", "kompose", "--root", str(kroot.path), stack, *command]
    process = subprocess.Popen(argv, env=kompose_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    locks = Path(repo) / "locks"

    def locked() -> bool:  # a lock file in place (restic writes it as <id>-tmp-<n>, then renames it)
        return any("-tmp-" not in p.name for p in locks.iterdir())

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (_restic_running(restic_command) and locked()):
        time.sleep(0.002)
    assert _restic_running(restic_command) and locked(), "restic never locked the repository"
    os.killpg(process.pid, signal.SIGKILL)
    killed = _restic_running(restic_command)
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(os.path.exists(f"/proc/{pid}") for pid in killed):
        time.sleep(0.01)  # gone, not a zombie: restic calls the lock of a live process live
    listed = _restic(repo, "list", "locks", "--no-lock")
    assert listed.stdout.split(), (listed, sorted(p.name for p in locks.iterdir()))
    lock = listed.stdout.split()[0]
    return json.loads(_restic(repo, "cat", "lock", lock, "--no-lock").stdout)["exclusive"]


def test_stale_locks_killed_restics_left_are_removed_and_push_pull_and_check_go_on(kroot, tmp_path):
    repo, stack, dump, sha = _pushed(kroot, tmp_path, 60)
    # a killed push: its restic backup's lock (not exclusive) stops restic check, which locks exclusively
    big = dump.with_name("shop_20260101_050000.sql")
    _write_dump(big, 200)
    assert not _leave_a_stale_lock(kroot, stack, repo, "db:push", big.name, restic_command=b"backup")
    assert not any(s for s in _snapshots(repo) if Path(s["paths"][0]).name == big.name)
    checked = kroot.run(stack, "db:verify", "--remote", "--read-data", "0")
    assert checked.code == 0 and "removed stale locks" in checked.stdout, checked

    # a killed restic check: its exclusive lock stops restic dump and restic backup
    assert _leave_a_stale_lock(kroot, stack, repo, "db:verify", "--remote", "--read-data", "100%",
                               restic_command=b"check")
    pulled = kroot.run(stack, "db:pull")
    assert pulled.code == 0 and dump.exists(), pulled
    assert "removed stale locks" in pulled.stdout and "already locked" in pulled.stdout, pulled
    assert _leave_a_stale_lock(kroot, stack, repo, "db:verify", "--remote", "--read-data", "100%",
                               restic_command=b"check")
    pushed = kroot.run(stack, "db:push", big.name)
    assert pushed.code == 0, pushed
    assert "removed stale locks" in pushed.stdout and "already locked" in pushed.stdout, pushed
    assert len(_snapshots(repo)) == 2
    assert _restic(repo, "check").returncode == 0
