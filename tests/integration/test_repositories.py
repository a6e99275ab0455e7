"""Off-host copies through real restic repositories: a local path, SFTP (a real sshd on 127.0.0.1)
and REST (rclone serve restic on 127.0.0.1), against real PostgreSQL.

The restic password is a canary: it must appear in no output, and (sampled from /proc while
kompose pushes and pulls) in no process's argv; neither may the REST server's password,
which sits in the repository string.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.helpers import Postgres, kompose_env, restic_processes

pytestmark = pytest.mark.docker

CANARY = f"canary-{secrets.token_hex(8)}"
DUMP_NAME = re.compile(r"_\d{8}_\d{6}\.(sql|sql\.gz|sql\.zst|dump)$")


def _stack(kroot, pg: Postgres, repositories: str, password: str = CANARY, extra: str = "",
           hooks: str | None = None) -> str:
    return kroot.stack(
        "db", compose="services: {}\n", hooks=hooks,
        env=(f"DB_CONTAINER={pg.container.name}\nDB_NAME={pg.database}\nDB_USER={pg.user}\n"
             f"DB_PASSWORD={pg.password}\nKOMPOSE_REPOSITORIES='{repositories}'\nRESTIC_PASSWORD={password}\n{extra}"),
    )


def _seed(pg: Postgres, rows: int = 500) -> dict[str, str]:
    pg.sql("CREATE TABLE items (id int PRIMARY KEY, name text)")
    pg.sql(f"INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, {rows}) g")
    return pg.checksums()


def _dumps(kroot) -> list[Path]:
    return sorted(p for p in kroot.dir("db").iterdir() if DUMP_NAME.search(p.name))


def _restic(url: str, *args: str, password: str = CANARY, env: dict | None = None) -> subprocess.CompletedProcess:
    full = {**os.environ, **(env or {}), "RESTIC_REPOSITORY": url, "RESTIC_PASSWORD": password}
    return subprocess.run(["restic", *args], env=full, capture_output=True, text=True, timeout=120)


def _init(url: str, password: str = CANARY, env: dict | None = None) -> None:
    result = _restic(url, "init", password=password, env=env)
    assert result.returncode == 0, result.stderr


def _snapshots(url: str, env: dict | None = None) -> list[dict]:
    result = _restic(url, "snapshots", "--json", "--no-lock", env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _no_canary(result, *secrets_: str) -> None:
    for secret in (CANARY, *secrets_):
        assert secret not in result.stdout and secret not in result.stderr, f"a secret leaked:\n{result}"


class ArgvWatch:
    """Reads every host process's command line from /proc while kompose runs, looking for secrets."""

    def __init__(self, *secrets_: str):
        self.secrets = secrets_
        self.samples = 0
        self.hits: list[str] = []
        self.saw_restic = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            for entry in os.listdir("/proc"):
                if not entry.isdigit():
                    continue
                try:
                    with open(f"/proc/{entry}/cmdline", "rb") as handle:
                        args = handle.read().replace(b"\0", b" ").decode("utf-8", "replace")
                except OSError:
                    continue
                if "restic" in args.split(" ", 1)[0]:
                    self.saw_restic = True
                self.hits += [args for secret in self.secrets if secret in args]
            self.samples += 1
            self._stop.wait(0.005)


@pytest.fixture
def repository(request, tmp_path, sftp_server, rest_server):
    """(url, extra env for kompose and restic) of a fresh, initialised repository of each kind."""
    name = f"r{secrets.token_hex(4)}"
    kind = request.param
    if kind == "local":
        url, env = str(tmp_path / "restic-repo"), {}
    elif kind == "sftp":
        url, env = sftp_server.url(name), dict(sftp_server.env)
    else:
        url, env = rest_server.url(name), {}
    _init(url, env=env)
    return url, env


@pytest.mark.parametrize("repository", ["local", "sftp", "rest"], indirect=True)
def test_round_trip_through_a_repository_with_no_local_dump_left(kroot, pg, repository, rest_server):
    url, env = repository
    before = _seed(pg)
    stack = _stack(kroot, pg, url)
    with ArgvWatch(CANARY, rest_server.password) as watch:
        exported = kroot.run(stack, "db:export", env=env)
        assert exported.code == 0, exported
        [dump] = _dumps(kroot)
        sha = json.loads(Path(f"{dump}.json").read_text())["sha256"]
        [snap] = _snapshots(url, env)
        assert {"kompose", f"stack:{stack}", f"db:{pg.database}", f"sha256:{sha}", "verified"} <= set(snap["tags"])
        assert sorted(Path(p).name for p in snap["paths"]) == [dump.name, f"{dump.name}.json"]
        pushed = kroot.run(stack, "db:push", env=env)  # the repository has it: nothing to copy
        assert pushed.code == 0 and "already" in pushed.stdout, pushed
        assert len(_snapshots(url, env)) == 1

        # the host is lost: no dump, no manifest; the data is damaged
        for path in kroot.dir("db").iterdir():
            if path.name.startswith(pg.database):
                path.unlink()
        pg.sql("DELETE FROM items WHERE id % 2 = 0")

        listed = kroot.run(stack, "db:list", "--remote", "--json", env=env)
        assert listed.code == 0, listed
        [row] = json.loads(listed.stdout)["copies"]
        assert (row["file"], row["sha256"], row["verified"], row["size"]) == (dump.name, sha, True, row["size"])
        assert row["size"] > 0

        pulled = kroot.run(stack, "db:pull", env=env)
        assert pulled.code == 0, pulled
    assert _dumps(kroot) == [dump]
    assert json.loads(Path(f"{dump}.json").read_text())["sha256"] == sha
    assert dump.stat().st_mode & 0o777 == 0o600
    assert not list(kroot.dir("db").glob(".kompose-pull-*"))
    imported = kroot.run(stack, "db:import", env=env)
    assert imported.code == 0, imported
    assert pg.checksums() == before
    for result in (exported, pushed, listed, pulled, imported):
        _no_canary(result, rest_server.password)
    assert watch.saw_restic and watch.samples > 20
    assert watch.hits == [], watch.hits[:3]


def test_dry_run_shows_one_copy_step_per_repository_with_credentials_masked(kroot, pg, tmp_path, rest_server):
    _seed(pg, 10)
    url = rest_server.url("dry")
    stack = _stack(kroot, pg, f"{tmp_path / 'a'} {url}")
    result = kroot.run(stack, "db:export", "--dry-run")
    assert result.code == 0, result
    copies = [line for line in result.stdout.splitlines() if re.match(r"\s+\d+\. copy ", line)]
    assert len(copies) == 2, result.stdout
    assert str(tmp_path / "a") in copies[0] and rest_server.url("dry", credentials=False).replace("http://", "") \
        not in copies[1]
    assert f"{rest_server.user}:***@127.0.0.1" in copies[1]
    plan = kroot.run(stack, "db:export", "--dry-run", "--json")
    steps = json.loads(plan.stdout)["stacks"][0]["steps"]
    assert [s["repository"] for s in steps if s["kind"] == "copy"][1].endswith(f"{rest_server.user}:***@127.0.0.1:"
                                                                                f"{rest_server.port}/dry")
    _no_canary(result, rest_server.password)
    _no_canary(plan, rest_server.password)
    assert not _dumps(kroot)


def test_one_repository_down_the_other_gets_its_copy_and_the_stack_fails(kroot, pg, tmp_path, rest_server):
    _seed(pg, 50)
    good = str(tmp_path / "good")
    _init(good)
    down = f"rest:http://kompose:{rest_server.password}@127.0.0.1:9/nothing-listens"  # port 9: discard, closed
    stack = _stack(kroot, pg, f"{down} {good}")
    result = kroot.run(stack, "db:export")
    assert result.code == 1, result
    [dump] = _dumps(kroot)  # the local dump stays, complete, with its manifest
    assert Path(f"{dump}.json").exists()
    assert len(_snapshots(good)) == 1
    lines = [line for line in (result.stdout + result.stderr).splitlines()
             if "rest:http://kompose:***@127.0.0.1:9/nothing-listens" in line and "connection refused" in line]
    assert lines, result
    _no_canary(result, rest_server.password)
    # a retry copies into the repository that lacks it, and only there
    retry = kroot.run("-e", f"KOMPOSE_REPOSITORIES={good}", stack, "db:push")
    assert retry.code == 0, retry
    assert len(_snapshots(good)) == 1
    assert "already" in retry.stdout


def test_wrong_password_fails_the_stack_with_restics_reason_and_keeps_the_dump(kroot, pg, tmp_path):
    _seed(pg, 20)
    repo = str(tmp_path / "repo")
    _init(repo, password="the-right-one")
    stack = _stack(kroot, pg, repo, password=CANARY)
    result = kroot.run(stack, "db:export")
    assert result.code == 1, result
    assert "wrong password" in result.stdout + result.stderr
    assert repo in result.stdout + result.stderr
    assert len(_dumps(kroot)) == 1
    _no_canary(result)
    pulled = kroot.run(stack, "db:pull")
    assert pulled.code == 1 and "wrong password" in pulled.stdout + pulled.stderr, pulled


def test_push_hooks_get_the_dump_and_the_masked_repository(kroot, pg, tmp_path, rest_server):
    _seed(pg, 10)
    url = rest_server.url(f"h{secrets.token_hex(3)}")
    _init(url)
    log = tmp_path / "hooks.log"
    hooks = (f'hook_pre_db_push() {{ echo "pre $1 $2" >>{log}; }}\n'
             f'hook_post_db_push() {{ echo "post $1 $2" >>{log}; }}\n')
    stack = _stack(kroot, pg, url, hooks=hooks)
    result = kroot.run(stack, "db:export")
    assert result.code == 0, result
    [dump] = _dumps(kroot)
    masked = f"rest:http://{rest_server.user}:***@127.0.0.1:{rest_server.port}/"
    pre, post = log.read_text().splitlines()
    assert pre.startswith(f"pre {dump} {masked}") and post.startswith(f"post {dump} {masked}")


def test_a_killed_push_leaves_no_copy_that_counts_and_a_retry_works(kroot, pg, tmp_path):
    pg.sql("CREATE TABLE big (id int, payload text)")
    pg.sql("INSERT INTO big SELECT g, md5(g::text) || repeat(md5((g * 7)::text), 6) FROM generate_series(1, 400000) g")
    repo = str(tmp_path / "repo")
    _init(repo)
    stack = _stack(kroot, pg, "off")
    assert kroot.run(stack, "db:export").code == 0
    [dump] = _dumps(kroot)
    argv = [sys.executable, "-m", "kompose", "--root", str(kroot.path), "-e", f"KOMPOSE_REPOSITORIES={repo}", stack,
            "db:push"]
    process = subprocess.Popen(argv, env=kompose_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _restic_backups():
        time.sleep(0.005)
    assert _restic_backups(), "restic backup never started"
    time.sleep(0.1)
    # kompose and its restic (in a process group of its own), both at once: as a power cut would
    os.killpg(process.pid, signal.SIGKILL)
    for pid in _restic_backups():
        os.kill(pid, signal.SIGKILL)
    process.wait()
    assert _snapshots(repo) == []
    listed = kroot.run("-e", f"KOMPOSE_REPOSITORIES={repo}", stack, "db:list", "--remote", "--json")
    assert listed.code == 0 and json.loads(listed.stdout)["copies"] == [], listed
    retry = kroot.run("-e", f"KOMPOSE_REPOSITORIES={repo}", stack, "db:push")
    assert retry.code == 0, retry
    [snap] = _snapshots(repo)
    assert Path(snap["paths"][0]).name == dump.name
    check = _restic(repo, "check")
    assert check.returncode == 0, check.stderr


def _restic_backups() -> list[int]:
    return restic_processes(b"backup")


def test_cleanup_applies_the_policy_in_each_repository(kroot, pg, tmp_path):
    _seed(pg, 10)
    repo = str(tmp_path / "repo")
    _init(repo)
    stack = _stack(kroot, pg, repo)
    for _ in range(3):
        assert kroot.run(stack, "db:export").code == 0
    assert len(_snapshots(repo)) == 3
    dry = kroot.run(stack, "db:cleanup", "--keep-last", "2", "--dry-run")
    assert dry.code == 0 and re.search(r"\d+\. forget ", dry.stdout), dry
    assert len(_snapshots(repo)) == 3
    result = kroot.run(stack, "db:cleanup", "--keep-last", "2")
    assert result.code == 0, result
    kept = _snapshots(repo)
    assert len(kept) == 2 and len(_dumps(kroot)) == 2
    assert {Path(p).name for s in kept for p in s["paths"] if not p.endswith(".json")} == {d.name for d in _dumps(kroot)}
    assert _restic(repo, "check").returncode == 0


def test_restic_missing_is_one_line_saying_how_to_install_it(kroot, pg, tmp_path):
    _seed(pg, 10)
    stack = _stack(kroot, pg, str(tmp_path / "repo"))
    bare = tmp_path / "bin"
    bare.mkdir()
    for tool in ("bash", "docker"):
        found = subprocess.run(["which", tool], capture_output=True, text=True).stdout.strip()
        if found:
            (bare / tool).symlink_to(found)
    result = kroot.run(stack, "db:export", env={"PATH": str(bare)})
    assert result.code == 2, result
    assert "apt-get install restic" in result.stderr and len(result.stderr.strip().splitlines()) == 1, result
    assert not _dumps(kroot)


def test_push_of_a_dump_that_no_longer_matches_its_manifest_leaves_no_copy(kroot, pg, tmp_path):
    _seed(pg, 50)
    repo = str(tmp_path / "repo")
    _init(repo)
    stack = _stack(kroot, pg, "off")
    assert kroot.run(stack, "db:export").code == 0
    [dump] = _dumps(kroot)
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 1  # one flipped bit since it was verified, size unchanged
    dump.write_bytes(bytes(data))
    result = kroot.run("-e", f"KOMPOSE_REPOSITORIES={repo}", stack, "db:push", dump.name)
    assert result.code == 1, result
    assert "differs from its manifest" in result.stdout + result.stderr
    assert _snapshots(repo) == []


def test_cleanup_in_a_repository_never_leaves_fewer_than_keep_last_verified_copies(kroot, pg, tmp_path):
    _seed(pg, 10)
    repo = str(tmp_path / "repo")
    _init(repo)
    stack = _stack(kroot, pg, repo)
    assert kroot.run(stack, "db:export").code == 0
    [verified] = _dumps(kroot)
    # a newer dump without a manifest (made by kompose.sh, say): its copy is not verified
    unverified = verified.with_name(verified.name.replace(verified.name.split("_")[-2], "29991231"))
    unverified.write_bytes(verified.read_bytes())
    pushed = kroot.run(stack, "db:push", unverified.name)
    assert pushed.code == 0, pushed
    assert len(_snapshots(repo)) == 2
    result = kroot.run(stack, "db:cleanup", "--keep-last", "1")
    assert result.code == 0, result
    kept = {Path(p).name for s in _snapshots(repo) for p in s["paths"] if not p.endswith(".json")}
    assert kept == {verified.name, unverified.name}, result.stdout  # keep-last 1 alone would forget the verified one
    assert "newest good dump; verified" in result.stdout


def test_verify_remote_reads_data_back_and_names_a_damaged_repository(kroot, pg, tmp_path):
    _seed(pg, 2000)
    good, bad = str(tmp_path / "good"), str(tmp_path / "bad")
    _init(good)
    _init(bad)
    stack = _stack(kroot, pg, f"{good} {bad}")
    assert kroot.run(stack, "db:export").code == 0
    fine = kroot.run(stack, "db:verify", "--remote", "--read-data", "100%")
    assert fine.code == 0, fine
    assert "restic check" in kroot.run(stack, "db:verify", "--remote", "--dry-run").stdout
    for pack in (Path(bad) / "data").rglob("*"):
        if pack.is_file():
            data = bytearray(pack.read_bytes())
            data[len(data) // 2] ^= 0xFF
            pack.chmod(0o600)
            pack.write_bytes(bytes(data))
    damaged = kroot.run(stack, "db:verify", "--remote", "--read-data", "100%")
    assert damaged.code == 1, damaged
    failed = [line for line in damaged.stderr.splitlines() if "✗" in line]  # a failure's line is on stderr
    assert len(failed) == 1 and f"repository {bad}: restic check failed" in failed[0], damaged
    assert good not in failed[0].replace(bad, "")
    usage = kroot.run(stack, "db:verify", "--remote", "--read-data", "lots")
    assert usage.code == 2 and "--read-data" in usage.stderr, usage


def test_status_and_cron_check_show_each_repositorys_newest_copy(kroot, pg, tmp_path):
    _seed(pg, 10)
    first, second = str(tmp_path / "first"), str(tmp_path / "second")
    _init(first)
    _init(second)
    schedule = 'KOMPOSE_SCHEDULE_DB_EXPORT="* * * * *"\n'  # due every minute
    stack = _stack(kroot, pg, first, extra=schedule)
    assert kroot.run(stack, "db:export").code == 0
    [dump] = _dumps(kroot)
    # a second repository is added later: it has no copy yet
    env_file = kroot.dir("db") / ".env"
    env_file.write_text(env_file.read_text().replace(f"KOMPOSE_REPOSITORIES='{first}'",
                                                     f"KOMPOSE_REPOSITORIES='{first} {second}'"))
    [mine] = [d for d in json.loads(kroot.run("status", "--json").stdout)["stacks"] if d["stack"] == stack]
    assert [(c["repository"], c["dump"]) for c in mine["copies"]] == [(first, dump.name), (second, None)]
    row = next(line for line in kroot.run("status").stdout.splitlines() if line.startswith(stack))
    assert "(1/2)" in row
    cron_file = kroot.path / "cron.d-kompose"
    assert kroot.run("cron", "--install", "--cron-file", str(cron_file)).code == 0
    assert kroot.run(stack, "db:export").code == 0  # a fresh export: a copy in each
    check = json.loads(kroot.run("cron", "--check", "--cron-file", str(cron_file), "--json").stdout)
    [export] = [r for r in check["schedules"] if r["stack"] == stack]
    assert export["state"] == "ok", export
    # as if the copy into the second repository had failed: its newest copy is the older dump's (none)
    state = kroot.dir("db") / ".kompose-copies.json"
    state.write_text(json.dumps({first: json.loads(state.read_text())[first]}))
    check = json.loads(kroot.run("cron", "--check", "--cron-file", str(cron_file), "--json").stdout)
    [export] = [r for r in check["schedules"] if r["stack"] == stack]
    assert export["state"] == "no copy" and second in export["detail"], export


@pytest.mark.parametrize("repository", ["rest"], indirect=True)
def test_drill_from_a_repository_with_no_local_dump(kroot, pg, repository):
    url, env = repository
    before = _seed(pg, 300)
    stack = _stack(kroot, pg, url)
    assert kroot.run(stack, "db:export", env=env).code == 0
    [dump] = _dumps(kroot)
    dump.unlink()
    Path(f"{dump}.json").unlink()
    dry = kroot.run(stack, "db:drill", "--from-repository", "--dry-run", env=env)
    assert dry.code == 0 and re.search(r"\d+\. pull ", dry.stdout) and dump.name in dry.stdout, dry
    result = kroot.run(stack, "db:drill", "--from-repository", "--json", env=env)
    assert result.code == 0, result
    [outcome] = json.loads(result.stdout)["outcomes"]
    counts = outcome["details"]["row_counts"]
    assert any(table.endswith("items") and count == 300 for table, count in counts.items()), counts
    assert not _dumps(kroot) and not (kroot.dir("db") / ".kompose-drill-pull").exists()
    assert pg.checksums() == before
    _no_canary(result)
