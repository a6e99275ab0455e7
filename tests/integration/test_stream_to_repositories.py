"""KOMPOSE_LOCAL_DUMPS=no: db:export streams pg_dump's output into real restic repositories (no local
dump), checked in flight; a stream that fails a check (pg_dump killed) or is cut off (kompose killed)
leaves nothing that db:list --remote, db:pull or retention would count. Real PostgreSQL, real restic.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.helpers import kompose_env, restic_processes
from tests.integration.test_repositories import (  # noqa: F401  (repository: a fixture)
    CANARY, ArgvWatch, _dumps, _init, _no_canary, _restic, _seed, _snapshots, _stack, repository,
)

pytestmark = pytest.mark.docker

STREAM = "KOMPOSE_LOCAL_DUMPS=no\n"


def _restic_stdin_backups() -> list[int]:
    return restic_processes(b"--stdin", b"kompose-partial")


def _big(pg) -> None:
    pg.sql("CREATE TABLE big (id int, payload text)")
    pg.sql("INSERT INTO big SELECT g, md5(g::text) || repeat(md5((g * 7)::text), 6) FROM generate_series(1, 600000) g")


def _wait_for_stream(timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not _restic_stdin_backups():
        time.sleep(0.005)
    assert _restic_stdin_backups(), "restic backup --stdin never started"


def test_streamed_export_leaves_no_local_dump_and_pull_import_restores_it(kroot, pg, tmp_path):
    before = _seed(pg, 700)
    repo = str(tmp_path / "repo")
    _init(repo)
    log = tmp_path / "hooks.log"
    stack = _stack(kroot, pg, repo, extra=STREAM, hooks=(f'hook_pre_db_push() {{ echo "pre $1 $2" >>{log}; }}\n'
                                                         f'hook_post_db_push() {{ echo "post $1 $2" >>{log}; }}\n'))
    dry = kroot.run(stack, "db:export", "--dry-run")
    assert dry.code == 0 and "stream" in dry.stdout and "kompose-partial" in dry.stdout, dry
    dry_json = kroot.run(stack, "db:export", "--dry-run", "--json")
    assert dry_json.code == 0 and pg.password not in dry_json.stdout, dry_json
    assert any(s["kind"] == "stream" for p in json.loads(dry_json.stdout)["stacks"] for s in p["steps"]), dry_json
    exported = kroot.run(stack, "db:export", "--json")
    assert exported.code == 0, exported
    assert _dumps(kroot) == [] and not list(kroot.dir("db").glob("*.partial"))
    [outcome] = json.loads(exported.stdout)["outcomes"]
    sha = outcome["details"]["sha256"]
    snaps = _snapshots(repo)
    [copy] = [s for s in snaps if "kompose" in s["tags"]]
    [meta] = [s for s in snaps if "kompose-manifest" in s["tags"]]
    assert len(snaps) == 2, snaps
    assert {f"stack:{stack}", f"db:{pg.database}", f"sha256:{sha}", "verified"} <= set(copy["tags"])
    name = os.path.basename(copy["paths"][0])
    assert log.read_text().splitlines() == [f"pre {name} {repo}", f"post {name} {repo}"]
    shown = _restic(repo, "dump", meta["id"], f"/{name}.json")
    data = json.loads(shown.stdout)
    assert data["sha256"] == sha and data["verification"]["ok"] and data["rows"]
    assert any(t.endswith("items") and n == 700 for t, n in data["rows"].items()), data["rows"]
    listed = kroot.run(stack, "db:list", "--remote", "--json")
    [row] = json.loads(listed.stdout)["copies"]
    assert (row["file"], row["sha256"], row["verified"], row["manifest"]) == (name, sha, True, True), row

    pg.sql("DELETE FROM items WHERE id % 3 = 0")
    pulled = kroot.run(stack, "db:pull")
    assert pulled.code == 0, pulled
    [dump] = _dumps(kroot)
    assert dump.name == name and json.loads(dump.with_name(name + ".json").read_text())["sha256"] == sha
    imported = kroot.run(stack, "db:import")
    assert imported.code == 0, imported
    assert pg.checksums() == before
    for result in (dry, exported, listed, pulled, imported):
        _no_canary(result)


def test_a_killed_pg_dump_leaves_no_snapshot_at_all(kroot, pg, tmp_path):
    _big(pg)
    repo = str(tmp_path / "repo")
    _init(repo)
    stack = _stack(kroot, pg, repo, extra=STREAM)
    argv = [sys.executable, "-m", "kompose", "--root", str(kroot.path), stack, "db:export"]
    process = subprocess.Popen(argv, env=kompose_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_stream()
    time.sleep(0.2)
    # pg_dump dies in the database container, mid-stream: restic must not keep what it got
    killer = ('for p in /proc/[0-9]*; do [ "$(head -c 7 $p/cmdline 2>/dev/null)" = pg_dump ] && '
              'kill -9 ${p#/proc/}; done; true')
    subprocess.run(["docker", "exec", pg.container.name, "sh", "-c", killer], check=True, timeout=30)
    out, err = process.communicate(timeout=120)
    assert process.returncode != 0, (out, err)
    assert "no copy was kept" in err, err
    assert _snapshots(repo) == []
    assert _dumps(kroot) == [] and not list(kroot.dir("db").glob("*.partial"))
    assert _restic(repo, "check").returncode == 0


def test_a_killed_export_leaves_a_partial_that_nothing_counts_and_the_next_export_forgets(kroot, pg, tmp_path):
    _big(pg)
    repo = str(tmp_path / "repo")
    _init(repo)
    stack = _stack(kroot, pg, repo, extra=STREAM)
    argv = [sys.executable, "-m", "kompose", "--root", str(kroot.path), stack, "db:export"]
    process = subprocess.Popen(argv, env=kompose_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for_stream()
    [restic_pid] = _restic_stdin_backups()
    time.sleep(1.0)
    # only kompose dies: its restic reads end-of-input and writes a snapshot of what it got
    process.send_signal(signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and os.path.exists(f"/proc/{restic_pid}"):
        time.sleep(0.05)
    snaps = _snapshots(repo)
    # what restic kept of the cut stream (it usually stores what it got; under load it has been seen
    # to leave nothing) is a partial only
    assert all("kompose-partial" in s["tags"] and "kompose" not in s["tags"] for s in snaps), snaps
    if not snaps:  # the partial a killed export leaves, made by hand, so its forgetting is always tested
        made = subprocess.run(["restic", "backup", "--stdin", "--stdin-filename", f"{pg.database}_20261201_010101.sql",
                               "--tag", "kompose-partial", "--tag", f"stack:{stack}", "--tag", f"db:{pg.database}",
                               "--tag", "time:20261201_010101"], input=b"-- cut", capture_output=True,
                              env={**os.environ, "RESTIC_REPOSITORY": repo, "RESTIC_PASSWORD": CANARY})
        assert made.returncode == 0, made
    listed = kroot.run(stack, "db:list", "--remote", "--json")
    assert listed.code == 0 and json.loads(listed.stdout)["copies"] == [], listed
    pulled = kroot.run(stack, "db:pull")
    assert pulled.code != 0 and "not found" in pulled.stderr, pulled
    cleanup = kroot.run(stack, "db:cleanup", "--dry-run")
    assert cleanup.code == 0, cleanup
    again = kroot.run(stack, "db:export")
    assert again.code == 0, again
    assert "partial stream" in again.stdout, again
    tags = [s["tags"] for s in _snapshots(repo)]
    assert not any("kompose-partial" in t for t in tags), tags
    assert sum("kompose" in t for t in tags) == 1 and sum("kompose-manifest" in t for t in tags) == 1, tags


def test_stream_needs_repositories_and_a_plain_dump(kroot, pg, tmp_path):
    _seed(pg, 5)
    stack = _stack(kroot, pg, "off", extra=STREAM)
    result = kroot.run(stack, "db:export")
    assert result.code != 0 and "KOMPOSE_LOCAL_DUMPS=no needs repositories" in result.stderr, result
    repo = str(tmp_path / "repo")
    _init(repo)
    stack = _stack(kroot, pg, repo, extra=STREAM + "KOMPOSE_EXPORT_FORMAT=custom\n")
    result = kroot.run(stack, "db:export")
    assert result.code != 0 and "plain, uncompressed" in result.stderr and "Traceback" not in result.stderr, result
    assert CANARY not in result.stderr


@pytest.mark.parametrize("repository", ["sftp", "rest"], indirect=True)
def test_streamed_export_through_sftp_and_rest_repositories_round_trips(kroot, pg, repository, rest_server):  # noqa: F811
    url, env = repository
    before = _seed(pg, 400)
    stack = _stack(kroot, pg, url, extra=STREAM)
    with ArgvWatch(CANARY, rest_server.password) as watch:
        exported = kroot.run(stack, "db:export", "--json", env=env)
        assert exported.code == 0, exported
        assert _dumps(kroot) == [] and not list(kroot.dir("db").glob("*.partial"))
        sha = json.loads(exported.stdout)["outcomes"][0]["details"]["sha256"]
        snaps = _snapshots(url, env)
        assert sorted(tuple(sorted(set(s["tags"]) & {"kompose", "kompose-manifest", "kompose-partial"}))
                      for s in snaps) == [("kompose",), ("kompose-manifest",)], snaps
        listed = kroot.run(stack, "db:list", "--remote", "--json", env=env)
        [row] = json.loads(listed.stdout)["copies"]
        assert (row["sha256"], row["verified"], row["manifest"]) == (sha, True, True), row
        pg.sql("DELETE FROM items WHERE id % 3 = 0")
        pulled = kroot.run(stack, "db:pull", env=env)
        assert pulled.code == 0, pulled
    [dump] = _dumps(kroot)
    assert json.loads(dump.with_name(dump.name + ".json").read_text())["sha256"] == sha
    imported = kroot.run(stack, "db:import", env=env)
    assert imported.code == 0, imported
    assert pg.checksums() == before
    for result in (exported, listed, pulled, imported):
        _no_canary(result, rest_server.password)
    assert watch.saw_restic and watch.hits == [], watch.hits[:3]


def test_a_mariadb_stack_streams_into_a_repository_and_pull_import_restores_it(kroot, mariadb, tmp_path):
    from tests.integration.test_mariadb import SCHEMA, counts, damage, fingerprint

    mariadb.script(SCHEMA)
    repo = str(tmp_path / "repo")
    _init(repo)
    quoted = mariadb.root_password.replace("\\", "\\\\").replace('"', '\\"')
    stack = kroot.stack("press", env=(f"DB_NAME={mariadb.database}\nDB_CONTAINER={mariadb.container.name}\n"
                                      f'MARIADB_ROOT_PASSWORD="{quoted}"\nKOMPOSE_REPOSITORIES={repo}\n'
                                      f"RESTIC_PASSWORD={CANARY}\n{STREAM}"))
    before, rows = fingerprint(mariadb), counts(mariadb)
    dry = kroot.run(stack, "db:export", "--dry-run")
    assert dry.code == 0 and "stream" in dry.stdout and "kompose-partial" in dry.stdout, dry
    exported = kroot.run(stack, "db:export", "--json")
    assert exported.code == 0, exported
    directory = kroot.dir("press")
    assert not [p for p in directory.iterdir() if p.name.startswith(mariadb.database)], list(directory.iterdir())
    sha = json.loads(exported.stdout)["outcomes"][0]["details"]["sha256"]
    snaps = _snapshots(repo)
    [copy] = [s for s in snaps if "kompose" in s["tags"]]
    [meta] = [s for s in snaps if "kompose-manifest" in s["tags"]]
    assert {f"sha256:{sha}", "verified"} <= set(copy["tags"]), copy
    name = os.path.basename(copy["paths"][0])
    data = json.loads(_restic(repo, "dump", meta["id"], f"/{name}.json").stdout)
    assert data["sha256"] == sha and data["verification"]["ok"] and "MariaDB" in data["verification"]["detail"]
    assert {t.split(".")[-1].strip("`"): n for t, n in data["rows"].items() if n} == \
        {t: n for t, n in rows.items() if n}, (data["rows"], rows)

    damage(mariadb)
    pulled = kroot.run(stack, "db:pull")
    assert pulled.code == 0, pulled
    assert (directory / name).exists()
    imported = kroot.run(stack, "db:import")
    assert imported.code == 0, imported
    assert fingerprint(mariadb) == before
    for result in (dry, exported, pulled, imported):
        _no_canary(result, mariadb.root_password)
