"""Issue 18 items 10 and 11 against real PostgreSQL, MariaDB and restic: every dump, manifest and
state file is mode 0600 under the default umask (whichever transport wrote it), and
KOMPOSE_DUMP_DIR puts all of them outside the stack directory, for every command that reads or
writes dumps."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.helpers import MariaDB, Postgres

pytestmark = pytest.mark.docker

DUMP_NAME = re.compile(r"_\d{8}_\d{6}\.(sql|sql\.gz|sql\.zst|dump)$")
RESTIC_PASSWORD = "kt-dump-dir-restic"


@pytest.fixture
def default_umask():
    """The default umask (022) for the kompose processes the test starts: a dump must not rely on a strict one."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def _stack(kroot, pg: Postgres, extra: str = "", hooks: str | None = None) -> str:
    return kroot.stack(
        "db", compose="services: {}\n", hooks=hooks,
        env=(f"DB_CONTAINER={pg.container.name}\nDB_NAME={pg.database}\nDB_USER={pg.user}\n"
             f"DB_PASSWORD={pg.password}\n{extra}"),
    )


def _seed(pg: Postgres, rows: int = 300) -> dict[str, str]:
    pg.sql("CREATE TABLE items (id int PRIMARY KEY, name text)")
    pg.sql(f"INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, {rows}) g")
    return pg.checksums()


def _dumps(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if DUMP_NAME.search(p.name)) if directory.is_dir() else []


def _mode(path: Path) -> str:
    return oct(path.stat().st_mode & 0o777)


@pytest.mark.parametrize("args", [
    ("--transport", "exec"),
    ("--transport", "direct"),  # the helper writes a named pipe; kompose copies it into the dump
    ("--transport", "direct", "--format", "custom"),  # the helper writes the file kompose created
    ("--transport", "exec", "--format", "custom"),
    ("--transport", "exec", "--compress", "gzip"),
    ("--transport", "direct", "--compress", "gzip"),
    ("--compress", "zstd"),  # compressed on the host
], ids=lambda args: "-".join(a.lstrip("-") for a in args))
def test_every_dump_and_manifest_is_0600_under_the_default_umask(kroot, pg, default_umask, args):
    _seed(pg)
    stack = _stack(kroot, pg)
    result = kroot.run(stack, "db:export", *args)
    assert result.code == 0, result
    [dump] = _dumps(kroot.dir("db"))
    assert (_mode(dump), _mode(Path(f"{dump}.json"))) == ("0o600", "0o600"), result
    assert dump.stat().st_uid == os.getuid()  # the helper wrote it as kompose's user
    assert _mode(kroot.dir("db") / ".kompose-last-run.json") == "0o600"
    assert _mode(kroot.dir("db") / ".kompose.lock") == "0o600"


def test_the_drill_state_is_0600(kroot, pg, default_umask):
    _seed(pg)
    stack = _stack(kroot, pg)
    assert kroot.run(stack, "db:export").code == 0
    drilled = kroot.run(stack, "db:drill")
    assert drilled.code == 0, drilled
    assert _mode(kroot.dir("db") / ".kompose-drill.json") == "0o600"


def test_a_mariadb_dump_is_0600(kroot, mariadb: MariaDB, default_umask):
    mariadb.sql("CREATE TABLE items (id int PRIMARY KEY, name text)")
    mariadb.sql("INSERT INTO items VALUES (1, 'a'), (2, 'b')")
    stack = kroot.stack(
        "db", compose="services: {}\n",
        env=(f"DB_ENGINE=mariadb\nDB_CONTAINER={mariadb.container.name}\nDB_NAME={mariadb.database}\n"
             f"DB_USER={mariadb.user}\nDB_PASSWORD={mariadb.password}\n"),
    )
    for args in ((), ("--compress", "zstd")):
        result = kroot.run(stack, "db:export", *args)
        assert result.code == 0, result
    dumps = _dumps(kroot.dir("db"))
    assert len(dumps) == 2
    assert {_mode(p) for p in dumps} | {_mode(Path(f"{p}.json")) for p in dumps} == {"0o600"}


def test_dumps_state_and_copies_live_in_kompose_dump_dir(kroot, pg, tmp_path, default_umask):
    """KOMPOSE_DUMP_DIR in the root .env, relative to the root, without {stack} (the stack's name
    is appended): every command finds the dumps there, and the stack directory stays clean."""
    before = _seed(pg)
    repo = tmp_path / "restic-repo"
    subprocess.run(["restic", "init", "--repo", str(repo)], env={**os.environ, "RESTIC_PASSWORD": RESTIC_PASSWORD},
                   capture_output=True, check=True, timeout=120)
    (kroot.path / ".env").write_text((kroot.path / ".env").read_text() + "KOMPOSE_DUMP_DIR=../backups\n")
    seen = tmp_path / "hook-saw"
    stack = _stack(
        kroot, pg,
        f"KOMPOSE_REPOSITORIES={repo}\nRESTIC_PASSWORD={RESTIC_PASSWORD}\n"
        "KOMPOSE_SCHEDULE_DB_EXPORT='0 3 * * *'\n",
        hooks=f'hook_post_db_export() {{ echo "$1 $KOMPOSE_DUMP_FILE" >> {seen}; }}\n',
    )
    stack_dir = kroot.dir("db")
    dump_dir = tmp_path / "backups" / stack
    own_files = sorted(p.name for p in stack_dir.iterdir())

    planned = kroot.run(stack, "db:export", "--dry-run")
    assert planned.code == 0, planned
    assert f"dumps, manifests and state in {dump_dir} (KOMPOSE_DUMP_DIR; created (mode 0700)" in planned.stdout
    assert not dump_dir.exists()  # a dry run creates nothing

    exported = kroot.run(stack, "db:export")
    assert exported.code == 0, exported
    assert _mode(dump_dir) == "0o700"
    [dump] = _dumps(dump_dir)
    assert (_mode(dump), _mode(Path(f"{dump}.json"))) == ("0o600", "0o600")
    assert seen.read_text().split() == [str(dump), str(dump)]  # hooks: $1 and KOMPOSE_DUMP_FILE
    assert _mode(dump_dir / ".kompose-copies.json") == "0o600"  # the copy in the repository, for status

    listed = kroot.run(stack, "db:list", "--json")
    assert listed.code == 0, listed
    assert [row["file"] for row in json.loads(listed.stdout)["dumps"]] == [str(dump)]
    assert re.search(rf"{re.escape(stack)} .* dumps:1 ", kroot.run("--list").stdout)
    status = kroot.run("status", stack, "--json")
    assert status.code == 0, status
    [row] = json.loads(status.stdout)["stacks"]
    assert row["newest_dump"] == dump.name and row["verification"] == "verified", row
    assert row["copies"] and row["last_runs"]["db:export"]["status"] == "ok", row
    cron = kroot.run("cron", stack, "--check", "--json")
    assert '"state": "ok"' in cron.stdout or '"state":"ok"' in cron.stdout, cron
    assert kroot.run(stack, "db:verify").code == 0
    drilled = kroot.run(stack, "db:drill")
    assert drilled.code == 0, drilled
    assert (dump_dir / ".kompose-drill.json").is_file()

    pg.sql("DELETE FROM items WHERE id > 10")
    imported = kroot.run(stack, "db:import")
    assert imported.code == 0, imported
    assert pg.checksums() == before
    # a DUMP named relative to the dump directory is found there
    assert kroot.run(stack, "db:import", dump.name, "--dry-run").code == 0
    rolled = kroot.run(stack, "db:rollback")  # the swap mark comes and goes in the dump directory
    assert rolled.code == 0, rolled
    assert not (dump_dir / ".kompose-swap.json").exists()

    # the next export removes a stale partial from the dump directory; retention works there
    stale = dump_dir / f"{pg.database}_20200101_000000.sql.partial"
    stale.write_text("-- interrupted\n")
    again = kroot.run(stack, "db:export")
    assert again.code == 0, again
    assert not stale.exists() and "left by an interrupted export" in again.stdout
    assert len(_dumps(dump_dir)) == 2
    cleaned = kroot.run(stack, "db:cleanup", "--keep-last", "1")
    assert cleaned.code == 0, cleaned
    [newest] = _dumps(dump_dir)
    assert newest != dump and not Path(f"{dump}.json").exists()

    # the host lost its dumps: db:pull brings the newest copy back into the dump directory
    newest.unlink()
    Path(f"{newest}.json").unlink()
    pulled = kroot.run(stack, "db:pull")
    assert pulled.code == 0, pulled
    assert _dumps(dump_dir) == [newest] and _mode(newest) == "0o600"
    pushed = kroot.run(stack, "db:push")
    assert pushed.code == 0 and "already" in pushed.stdout, pushed

    # nothing of it ever touched the stack directory
    assert sorted(p.name for p in stack_dir.iterdir()) == own_files


def test_kompose_dump_dir_with_stack_placeholder_in_the_stack_env_and_an_import_outside_it(kroot, pg, tmp_path):
    _seed(pg, 20)
    target = tmp_path / "elsewhere" / "{stack}" / "pg"
    stack = _stack(kroot, pg, f"KOMPOSE_DUMP_DIR={target}\n")
    dump_dir = tmp_path / "elsewhere" / stack / "pg"
    assert kroot.run(stack, "db:export").code == 0
    [dump] = _dumps(dump_dir)
    # a dump in the stack directory is not one of the stack's dumps any more
    (kroot.dir("db") / dump.name).write_bytes(dump.read_bytes())
    refused = kroot.run(stack, "db:import", str(kroot.dir("db") / dump.name))
    assert refused.code == 1 and f"outside the stack's dump directory {dump_dir}" in refused.stderr, refused
    bad = kroot.run("-e", "KOMPOSE_DUMP_DIR=/tmp/{host}", stack, "db:export")
    assert bad.code == 2 and "only {stack} is expanded" in bad.stderr, bad
