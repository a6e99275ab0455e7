"""The direct export transport (pg_dump in a helper container writing into the stack directory)
and --jobs: what a user checks — the rows after a round trip, the files on disk, no helper
container left behind, the exit code and the lines printed."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys

import pytest

from tests.helpers import kompose_env, wait_for

pytestmark = pytest.mark.docker

HELPER_LABEL = "io.kompose.helper"
DIRECTORY_LABEL = "io.kompose.directory"


def _helpers(client, directory) -> list:
    """Helper containers labelled for ``directory`` (running or not)."""
    # ignore_removed: a helper removed between the engine's list and the SDK's inspect of it is gone
    return client.containers.list(
        all=True, ignore_removed=True, filters={"label": [HELPER_LABEL, f"{DIRECTORY_LABEL}={directory.resolve()}"]}
    )


@pytest.fixture
def db_stack(kroot, postgres_factory, docker_client):
    """A stack whose database lives in its own PostgreSQL container (DB_CONTAINER), with 1000 rows in t."""
    server = postgres_factory(user="kompose", password="pw-transport-1", database="app")
    server.sql("CREATE TABLE t (id int PRIMARY KEY, note text)")
    server.sql("INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 1000) g")
    name = kroot.stack(
        "db",
        compose="services: {}\n",
        env=f"DB_CONTAINER={server.container.name}\nDB_NAME=app\nDB_USER=kompose\nDB_PASSWORD=pw-transport-1\n",
    )
    yield name, server, kroot.dir("db")
    for helper in _helpers(docker_client, kroot.dir("db")):  # only after a failed test
        helper.remove(force=True)


def _dumps(directory) -> list:
    return sorted(p for p in directory.iterdir() if re.search(r"_\d{8}_\d{6}\.(sql|dump)$", p.name))


def _partials(directory) -> list:
    return sorted(directory.glob("*.partial"))


@pytest.mark.parametrize("fmt", ["plain", "custom"])
def test_direct_export_round_trip(kroot, db_stack, docker_client, fmt):
    name, server, directory = db_stack
    before = server.checksum("t")

    exported = kroot.run(name, "db:export", "--format", fmt)

    assert exported.code == 0, exported
    assert "transport direct" in exported.stdout
    (dump,) = _dumps(directory)
    assert dump.stat().st_uid == os.getuid() and dump.stat().st_gid == os.getgid()
    assert not _partials(directory)
    assert _helpers(docker_client, directory) == []

    server.sql("DELETE FROM t WHERE id > 10")
    imported = kroot.run(name, "db:import")

    assert imported.code == 0, imported
    assert server.checksum("t") == before


@pytest.mark.parametrize("args, suffix", [((), ".sql"), (("--compress", "gzip"), ".sql.gz")])
def test_a_dump_hashed_while_it_grows_has_the_files_sha256_in_its_manifest(kroot, db_stack, args, suffix):
    """Plain dumps are hashed while pg_dump appends to them (no second read): the manifest's
    sha256 must still be the file's. ~60 MB of rows, so kompose polls the file many times."""
    name, server, directory = db_stack
    server.sql("CREATE TABLE big AS SELECT g AS id, repeat(md5(g::text), 3) AS body FROM generate_series(1, 500000) g")
    before = server.checksum("big")

    exported = kroot.run(name, "db:export", *args)

    assert exported.code == 0, exported
    assert "transport direct" in exported.stdout
    (dump,) = (p for p in directory.iterdir() if p.name.endswith(suffix) and re.search(r"_\d{8}_\d{6}", p.name))
    data = json.loads((directory / (dump.name + ".json")).read_text())
    assert data["size"] == dump.stat().st_size
    assert data["sha256"] == hashlib.sha256(dump.read_bytes()).hexdigest()
    assert data["verification"]["ok"] is True

    server.sql("DROP TABLE big")
    imported = kroot.run(name, "db:import")
    assert imported.code == 0, imported
    assert "sha256 matches its manifest" in imported.stdout
    assert server.checksum("big") == before


def test_without_named_pipes_pg_dump_writes_the_file_itself(db_stack, docker_client, monkeypatch):
    """A stack directory whose filesystem has no named pipes (some network and FUSE mounts):
    the helper's pg_dump writes the partial itself; same bytes, same sha256, and the user is told."""
    from kompose.docker import helper as helper_container
    from kompose.engines.postgres import sql as postgres
    from kompose.plan.steps import HELPER_MOUNT

    def no_fifo(path, mode=0o666):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(helper_container.os, "mkfifo", no_fifo)
    _, server, directory = db_stack
    conn = postgres.Connection("app", "kompose", "pw-transport-1", "5432")
    pipe, output = directory / "app_x.sql.pipe.partial", directory / "app_x.sql.partial"
    argv = postgres.pg_dump_argv(conn, "plain", output=f"{HELPER_MOUNT}/{pipe.name}", no_sync=True)

    result = helper_container.run_to_file(
        docker_client, server.container.image.id, server.container.id, directory, HELPER_MOUNT, argv,
        dict(conn.exec_env()), f"{os.getuid()}:{os.getgid()}", output, pipe=pipe,
    )

    assert result.exit_code == 0, result.stderr
    assert result.note.startswith(f"no named pipe in {directory} (Operation not permitted): pg_dump writes")
    data = output.read_bytes()
    assert b"PostgreSQL database dump complete" in data[-4096:]
    assert result.sha256 == hashlib.sha256(data).hexdigest() and result.bytes_out == len(data)
    assert not pipe.exists()
    # the helper is removed in the background while kompose goes on: it is gone soon after
    wait_for(lambda: _helpers(docker_client, directory) == [], message="the helper removed")


def test_a_direct_plain_dump_counts_its_rows_as_the_copier_passes_them(db_stack, docker_client):
    """The manifest's per-table row counts of a direct export come from the bytes the pipe copier
    writes (one pass: no second read of the dump); they are what a read of the file counts."""
    from kompose.docker import helper as helper_container
    from kompose.dumps import plain_guard
    from kompose.dumps.plain_sql import Scanner
    from kompose.engines.postgres import sql as postgres
    from kompose.plan.steps import HELPER_MOUNT

    _, server, directory = db_stack
    server.sql("CREATE TABLE more AS SELECT g AS id, repeat(md5(g::text), 4) AS body FROM generate_series(1, 30000) g")
    conn = postgres.Connection("app", "kompose", "pw-transport-1", "5432")
    pipe, output = directory / "app_y.sql.pipe.partial", directory / "app_y.sql.partial"
    argv = postgres.pg_dump_argv(conn, "plain", output=f"{HELPER_MOUNT}/{pipe.name}", no_sync=True)
    counter = Scanner(output.name, rewrite=False)

    result = helper_container.run_to_file(
        docker_client, server.container.image.id, server.container.id, directory, HELPER_MOUNT, argv,
        dict(conn.exec_env()), f"{os.getuid()}:{os.getgid()}", output, pipe=pipe, tap=counter.feed,
    )

    assert result.exit_code == 0, result.stderr
    assert result.tapped and not counter.disabled
    counter.end()
    assert counter.scan.rows == {"public.t": 1000, "public.more": 30000}
    assert counter.scan.rows == plain_guard.scan_file(output).rows
    wait_for(lambda: _helpers(docker_client, directory) == [], message="the helper removed")


_IN_OWN_MOUNT_NAMESPACE = r"""
set -u
mount -t tmpfs kompose-test "$ROOT"
cp -a "$SNAPSHOT/." "$ROOT"
"$PYTHON" -m kompose --root "$ROOT" "$STACK" db:export --transport direct --format "$FORMAT"
echo "direct exit: $?"
"$PYTHON" -m kompose --root "$ROOT" "$STACK" db:export --format "$FORMAT"
echo "auto exit: $?"
ls -A "$ROOT/$STACK"
"""


@pytest.mark.parametrize("fmt", ["plain", "custom"])
def test_an_engine_that_does_not_see_the_stack_directory(kroot, db_stack, docker_client, tmp_path, fmt):
    """kompose in a mount namespace of its own (as in a container, or beside Docker Desktop's VM): the
    engine sees another directory at the stack's path. Forced direct fails before pg_dump runs and
    writes nothing on either side; auto sees the other namespace and takes the exec transport."""
    name, _, directory = db_stack
    snapshot = tmp_path / "snapshot"
    subprocess.run(["cp", "-a", str(kroot.path), str(snapshot)], check=True)
    engine_view = sorted(os.listdir(directory))
    env = kompose_env({"ROOT": str(kroot.path), "SNAPSHOT": str(snapshot), "STACK": name, "FORMAT": fmt,
                       "PYTHON": sys.executable})

    ran = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", _IN_OWN_MOUNT_NAMESPACE],
                         env=env, capture_output=True, text=True, timeout=300)

    out = ran.stdout
    assert ran.returncode == 0, ran
    assert "direct exit: 1" in out and "auto exit: 0" in out, out
    forced, auto = out.split("direct exit: 1")
    errors = [line for line in ran.stderr.splitlines() if "✗" in line]  # failures are on stderr (auto succeeds)
    assert len(errors) == 1 and re.search(
        r"the engine cannot see \S+\.partial \(it does not share this host's files\): use --transport exec",
        errors[0]), out
    assert "pg_dump" not in errors[0] and "pw-transport-1" not in ran.stdout + ran.stderr
    assert "transport exec: the engine runs in another mount namespace" in auto, out
    suffix = ".sql" if fmt == "plain" else ".dump"
    kompose_view = auto.split("auto exit: 0")[1].split()
    assert [f for f in kompose_view if f.endswith(suffix)] and not [f for f in kompose_view if "partial" in f], out
    # nothing landed in the engine's view of the directory, and no helper is left
    assert sorted(os.listdir(directory)) == engine_view
    assert _helpers(docker_client, directory) == []


def test_exec_transport_still_works_and_gives_the_same_rows(kroot, db_stack):
    name, server, directory = db_stack
    before = server.checksum("t")

    exported = kroot.run(name, "db:export", "--transport", "exec")

    assert exported.code == 0, exported
    assert "transport exec: forced by --transport exec" in exported.stdout
    server.sql("TRUNCATE t")
    assert kroot.run(name, "db:import").code == 0
    assert server.checksum("t") == before


def test_plan_names_the_transport_and_why(kroot, db_stack):
    name, _, _ = db_stack

    text = kroot.run(name, "db:export", "--dry-run")
    data = json.loads(kroot.run(name, "db:export", "--dry-run", "--json").stdout)
    forced = json.loads(kroot.run(name, "db:export", "--transport", "exec", "--dry-run", "--json").stdout)

    assert re.search(r"transport direct: local engine \(unix://[^)]+\)", text.stdout), text
    assert "pw-transport-1" not in text.output
    steps = data["stacks"][0]["steps"]
    assert any(s["kind"] == "note" and s["text"].startswith("transport direct:") for s in steps)
    helper = next(s for s in steps if s["kind"] == "helper")
    assert helper["env"] == {"PGPASSWORD": "***"} and "pw-transport-1" not in json.dumps(data)
    assert helper["user"] == f"{os.getuid()}:{os.getgid()}"
    # pg_dump in the check's exec (run/export_checks.py): the check's step holds it
    assert any(s["kind"] == "exec" or (s.get("dump") or {}).get("kind") == "exec" for s in forced["stacks"][0]["steps"])


def test_pg_dump_failure_in_the_helper_removes_it_and_leaves_no_file(kroot, db_stack, docker_client):
    name, _, directory = db_stack

    result = kroot.run("-e", "DB_PASSWORD=not-the-password", name, "db:export")

    assert result.code == 1, result
    assert "password authentication failed" in result.output
    assert _helpers(docker_client, directory) == []
    assert _dumps(directory) == [] and _partials(directory) == []


def _hold_table_lock(server) -> subprocess.Popen:
    """A session holding an exclusive lock on t, so pg_dump waits on it (an export that cannot finish yet)."""
    holder = subprocess.Popen(
        ["docker", "exec", "-i", server.container.name, "psql", "-X", "-q", "-U", "kompose", "-d", "app"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
    )
    holder.stdin.write("BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(120);\n")
    holder.stdin.flush()
    wait_for(
        lambda: server.scalar("SELECT count(*) FROM pg_locks WHERE mode = 'AccessExclusiveLock' AND granted "
                              "AND relation = 't'::regclass") == "1",
        message="the table lock",
    )
    return holder


def _pg_dump_waiting(server) -> bool:
    return server.scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_dump' AND wait_event_type = 'Lock'"
    ) == "1"


def _release(server, holder: subprocess.Popen) -> None:
    server.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(120)%' "
               "AND pid <> pg_backend_pid()")
    holder.kill()
    holder.wait()


def _start_export(kroot, name: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "kompose", "--root", str(kroot.path), name, "db:export"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=kompose_env(), start_new_session=True,
    )


def test_sigkilled_export_leaves_no_dump_and_the_next_run_removes_its_helper(kroot, db_stack, docker_client):
    name, server, directory = db_stack
    holder = _hold_table_lock(server)
    try:
        export = _start_export(kroot, name)
        wait_for(lambda: _helpers(docker_client, directory) and _pg_dump_waiting(server), message="the helper at work")
        os.killpg(export.pid, signal.SIGKILL)
        export.communicate()

        assert _dumps(directory) == []  # at most a .partial: nothing that looks like a dump
        assert len(_helpers(docker_client, directory)) == 1  # pg_dump still waits in the orphaned helper
    finally:
        _release(server, holder)

    again = kroot.run(name, "db:export")

    assert again.code == 0, again
    assert "removed helper container kompose-helper-" in again.stdout
    assert _helpers(docker_client, directory) == []
    assert _partials(directory) == [] and len(_dumps(directory)) == 1


def test_sigterm_during_a_direct_export_removes_the_helper(kroot, db_stack, docker_client):
    name, server, directory = db_stack
    holder = _hold_table_lock(server)
    try:
        export = _start_export(kroot, name)
        wait_for(lambda: _helpers(docker_client, directory) and _pg_dump_waiting(server), message="the helper at work")
        os.kill(export.pid, signal.SIGTERM)
        _, stderr = export.communicate(timeout=60)

        assert export.returncode == 143, stderr
        assert "terminated" in stderr
        assert _helpers(docker_client, directory) == []
        assert _dumps(directory) == []
    finally:
        _release(server, holder)


HOOKS = """\
hook_pre_db_export() {
  for i in 1 2 3; do echo "$stack pre line $i"; sleep 0.2; done
}
hook_post_db_export() {
  echo "$stack post"
}
"""


def test_jobs_runs_stacks_at_once_with_output_grouped_and_the_summary_right(kroot, postgres_factory):
    server = postgres_factory(user="kompose", password="pw-jobs-1", database="app")
    server.sql("CREATE TABLE t AS SELECT generate_series(1, 100) AS id")
    good = f"DB_CONTAINER={server.container.name}\nDB_NAME=app\nDB_USER=kompose\nDB_PASSWORD=pw-jobs-1\n"
    names = [kroot.stack(short, compose="services: {}\n", env=good, hooks=HOOKS) for short in ("a", "b", "c")]
    bad = kroot.stack("d", compose="services: {}\n", env=good.replace("pw-jobs-1", "pw-wrong"), hooks=HOOKS)

    result = kroot.run("--jobs", "2", "*", "db:export")

    assert result.code == 1, result
    assert result.last_line == "3 succeeded, 1 failed of 4 stacks"
    headers = [i for i, line in enumerate(result.lines) if line.startswith("▶ ")]
    assert len(headers) == 4
    blocks = [result.lines[start:end] for start, end in zip(headers, headers[1:] + [len(result.lines) - 1])]
    for block in blocks:
        stack = block[0].split()[1]
        # every line that names a stack in a block names the block's own stack
        others = [line for line in block[1:] if any(n in line for n in names + [bad] if n != stack)]
        assert others == [], block
        if stack != bad:  # the bad password fails the completeness check, before the pre hook
            assert [line.strip() for line in block if " pre line " in line] == [f"{stack} pre line {i}" for i in (1, 2, 3)]
    # a failure's line is on stderr, naming its stack
    assert any("password authentication failed" in line and bad in line for line in result.stderr.splitlines()), result
    for short in ("a", "b", "c"):
        assert len(_dumps(kroot.dir(short))) == 1
    assert "pw-jobs-1" not in result.output


def test_jobs_really_overlaps_stacks(kroot):
    marker = kroot.path / "overlap.log"
    hooks = f"""\
    hook_pre_ps() {{
      echo "start $stack" >> {marker}
      sleep 1
      echo "end $stack" >> {marker}
    }}
    """
    for short in ("a", "b"):
        kroot.stack(short, compose="services: {}\n", hooks=hooks)

    result = kroot.run("--jobs", "2", "*", "ps")

    assert result.code == 0, result
    events = marker.read_text().split("\n")
    assert [e.split()[0] for e in events if e][:2] == ["start", "start"], events
    assert result.last_line == "2 succeeded, 0 failed of 2 stacks"
