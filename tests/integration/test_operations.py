"""Operations for unattended hosts against real PostgreSQL: manifests, verification, compressed round
trips, refusing tampered dumps, restore drills, reports (--json, --log-file, status, cron --check)."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.helpers import PG_IMAGE, Postgres

pytestmark = pytest.mark.docker


def _stack(kroot, pg: Postgres, extra: str = "", hooks: str | None = None, files: dict | None = None) -> str:
    return kroot.stack(
        "db", compose="services: {}\n", hooks=hooks, files=files,
        env=(f"DB_CONTAINER={pg.container.name}\nDB_NAME={pg.database}\nDB_USER={pg.user}\n"
             f"DB_PASSWORD={pg.password}\n{extra}"),
    )


def _seed(pg: Postgres, rows: int = 500) -> dict[str, str]:
    pg.sql("CREATE TABLE items (id int PRIMARY KEY, name text)")
    pg.sql(f"INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, {rows}) g")
    pg.sql("CREATE TABLE notes (body text)")
    pg.sql("INSERT INTO notes VALUES ('x'), ('y')")
    return pg.checksums()


def _dumps(kroot) -> list[Path]:
    return sorted(p for p in kroot.dir("db").iterdir() if re.search(r"_\d{8}_\d{6}\.(sql|sql\.gz|sql\.zst|dump)$", p.name))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("args, suffix, fmt, compression", [
    ((), ".sql", "plain", None),
    (("--format", "custom"), ".dump", "custom", None),
    (("--compress", "gzip"), ".sql.gz", "plain", "gzip"),
    (("--compress", "zstd"), ".sql.zst", "plain", "zstd"),
])
def test_export_writes_a_verified_manifest_and_the_dump_round_trips(kroot, pg, args, suffix, fmt, compression):
    before = _seed(pg)
    stack = _stack(kroot, pg)
    result = kroot.run(stack, "db:export", *args)
    assert result.code == 0, result
    [dump] = _dumps(kroot)
    assert dump.name.endswith(suffix)
    data = json.loads(Path(str(dump) + ".json").read_text())
    assert data["file"] == dump.name
    assert (data["format"], data["compression"]) == (fmt, compression)
    assert data["size"] == dump.stat().st_size
    assert data["sha256"] == _sha256(dump)
    assert (data["database"], data["stack"], data["image"]) == (pg.database, stack, PG_IMAGE)
    assert data["server_version"].startswith("15.") and data["pg_dump_version"].startswith("15.")
    assert data["started_at"] <= data["finished_at"]
    assert data["verification"]["ok"] is True
    assert ("pg_restore --list" if fmt == "custom" else "end-of-dump marker") in data["verification"]["method"]
    assert not list(kroot.dir("db").glob("*.partial"))
    if compression == "gzip":
        assert b"PostgreSQL database dump complete" in gzip.decompress(dump.read_bytes())[-4096:]
    if compression == "zstd":
        plain = subprocess.run(["zstd", "-dc", str(dump)], capture_output=True, check=True).stdout
        assert b"PostgreSQL database dump complete" in plain[-4096:]

    listing = kroot.run(stack, "db:list")
    kind = f"{fmt}+{compression}" if compression else fmt
    assert re.search(rf"{re.escape(dump.name)} .* {re.escape(kind)} +verified", listing.stdout), listing
    assert kroot.run(stack, "db:verify").code == 0

    pg.sql("DELETE FROM items WHERE id > 10")
    pg.sql("DROP TABLE notes")
    imported = kroot.run(stack, "db:import")
    assert imported.code == 0, imported
    assert "sha256 matches its manifest" in imported.stdout
    assert pg.checksums() == before


def test_tampered_dump_is_refused_by_import_and_verify(kroot, pg):
    _seed(pg)
    stack = _stack(kroot, pg)
    assert kroot.run(stack, "db:export").code == 0
    [dump] = _dumps(kroot)
    content = bytearray(dump.read_bytes())
    at = content.index(b"item 250")
    content[at + 5] = ord("9")  # one byte: 'item 250' -> 'item 950'; still a complete dump
    dump.write_bytes(bytes(content))
    pg.sql("DELETE FROM items WHERE id > 100")
    live = pg.checksums()

    refused = kroot.run(stack, "db:import")
    assert refused.code == 1
    assert re.search(r"sha256 \w+… differs from its manifest's \w+….*refusing to import it \(--force", refused.output)
    assert pg.checksums() == live
    assert not [d for d in pg.databases() if d.startswith(pg.database + "__kompose")]

    # --in-place drops the live database first: it checks the sha256 before anything else
    in_place = kroot.run(stack, "db:import", "--in-place")
    assert in_place.code == 1
    assert "refusing to import it" in in_place.output and "drop and recreate" not in in_place.output
    assert pg.checksums() == live

    verified = kroot.run(stack, "db:verify")
    assert verified.code == 1 and "differs from its manifest" in verified.stderr  # a failure: on stderr

    forced = kroot.run(stack, "db:import", "--force")
    assert forced.code == 0, forced
    assert "importing it anyway (--force)" in forced.stderr
    assert pg.scalar("SELECT name FROM items WHERE id = 250") == "item 950"


def test_dump_without_manifest_still_imports(kroot, pg):
    before = _seed(pg)
    stack = _stack(kroot, pg)
    assert kroot.run(stack, "db:export").code == 0
    [dump] = _dumps(kroot)
    Path(str(dump) + ".json").unlink()  # as kompose.sh or an older kompose left it
    pg.sql("TRUNCATE items")
    result = kroot.run(stack, "db:import")
    assert result.code == 0, result
    assert "no manifest (an older dump): checksum not checked" in result.stdout
    assert pg.checksums() == before


def test_import_warns_when_the_server_is_older_than_the_dump(kroot, pg):
    _seed(pg)
    stack = _stack(kroot, pg)
    assert kroot.run(stack, "db:export").code == 0
    [dump] = _dumps(kroot)
    manifest_path = Path(str(dump) + ".json")
    data = json.loads(manifest_path.read_text())
    data["server_version"] = "17.2 (Debian 17.2-1.pgdg120+1)"  # as if it came from a newer server
    manifest_path.write_text(json.dumps(data))
    result = kroot.run(stack, "db:import")
    assert result.code == 0, result
    assert re.search(r"warning: the server is PostgreSQL 15 but \S+ comes from 17", result.stderr), result


def test_drill_restores_smoke_tests_counts_and_drops(kroot, pg):
    before = _seed(pg, rows=321)
    marker = kroot.path / "drill-hook.txt"
    stack = _stack(
        kroot, pg,
        hooks=f"""
            hook_drill() {{
                echo "dump=$1 db=$2 env=$KOMPOSE_DB" > {marker}
            }}
        """,
        files={"sql/drill/10-enough-items.sql": """
            DO $$ BEGIN
              IF current_database() NOT LIKE '%\\_\\_kompose\\_drill' THEN RAISE EXCEPTION 'not the drill database'; END IF;
              IF (SELECT count(*) FROM items) < 300 THEN RAISE EXCEPTION 'too few items'; END IF;
            END $$;
        """},
    )
    assert kroot.run(stack, "db:export", "--format", "custom").code == 0
    result = kroot.run(stack, "db:drill", "--json")
    assert result.code == 0, result
    [outcome] = json.loads(result.stdout)["outcomes"]
    assert outcome["status"] == "ok"
    assert outcome["details"]["row_counts"] == {"public.items": 321, "public.notes": 2}
    drill_db = f"{pg.database}__kompose_drill"
    assert marker.read_text().split() == [f"dump={_dumps(kroot)[0]}", f"db={drill_db}", f"env={drill_db}"]
    assert drill_db not in pg.databases()
    assert pg.checksums() == before
    state = json.loads((kroot.dir("db") / ".kompose-drill.json").read_text())
    assert state["ok"] is True and state["row_counts"]["public.items"] == 321


def test_drill_against_a_corrupt_dump_fails_and_leaves_no_drill_database(kroot, pg):
    _seed(pg)
    stack = _stack(kroot, pg)
    assert kroot.run(stack, "db:export").code == 0
    [dump] = _dumps(kroot)
    Path(str(dump) + ".json").unlink()
    text = dump.read_text()
    # a complete-looking dump (end marker intact) whose middle is broken
    dump.write_text(text.replace("CREATE TABLE public.notes", "CREATE TABLEX public.notes", 1))
    result = kroot.run(stack, "db:drill")
    assert result.code == 1
    assert "syntax error" in result.stderr
    assert f"{pg.database}__kompose_drill" not in pg.databases()
    state = json.loads((kroot.dir("db") / ".kompose-drill.json").read_text())
    assert state["ok"] is False and "syntax error" in state["error"]

    status = json.loads(kroot.run("status", "--json").stdout)["stacks"]
    assert status[0]["drill_ok"] is False


def test_failing_smoke_test_drops_the_drill_database(kroot, pg):
    _seed(pg)
    stack = _stack(kroot, pg, files={"sql/drill/check.sql": "SELECT 1/0;"})
    assert kroot.run(stack, "db:export", "--compress", "gzip").code == 0
    result = kroot.run(stack, "db:drill")
    assert result.code == 1 and "division by zero" in result.stderr
    assert f"{pg.database}__kompose_drill" not in pg.databases()


def test_verify_reads_a_custom_archive_in_full(kroot, pg):
    pg.sql("CREATE TABLE big AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 50000) g")
    stack = _stack(kroot, pg)
    assert kroot.run(stack, "db:export", "--format", "custom").code == 0
    [dump] = _dumps(kroot)
    Path(str(dump) + ".json").unlink()
    dump.write_bytes(dump.read_bytes()[: dump.stat().st_size * 2 // 3])  # the table of contents is intact
    result = kroot.run(stack, "db:verify")
    assert result.code == 1
    assert "pg_restore failed" in result.stderr


def test_failed_export_leaves_neither_dump_nor_manifest(kroot, pg):
    stack = _stack(kroot, pg, extra="DB_PASSWORD=wrong-password\n")
    result = kroot.run(stack, "db:export", "--compress", "zstd")
    assert result.code == 1
    assert "password authentication failed" in result.output
    assert "wrong-password" not in result.output
    assert [p.name for p in kroot.dir("db").iterdir() if "_20" in p.name] == []


def test_log_file_json_summary_and_status(kroot, pg):
    _seed(pg)
    stack = _stack(kroot, pg, extra='KOMPOSE_SCHEDULE_DB_EXPORT="0 3 * * *"\nKOMPOSE_SCHEDULE_DB_DRILL="@weekly"\n')
    log = kroot.path / "logs" / "export.log"
    result = kroot.run("--log-file", str(log), "--json", "-e", f"DB_PASSWORD={pg.password}", stack, "db:export")
    assert result.code == 0, result
    [outcome] = json.loads(result.stdout)["outcomes"]
    [dump] = _dumps(kroot)
    assert outcome["status"] == "ok" and outcome["error"] is None
    assert outcome["file"] == str(dump) and outcome["bytes"] == dump.stat().st_size
    assert outcome["duration"] > 0 and outcome["details"]["sha256"] == _sha256(dump)

    lines = log.read_text().splitlines()
    assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} \[\d+\] ", line) for line in lines), lines
    assert "db:export" in lines[0] and "DB_PASSWORD=***" in lines[0]
    assert any("1 succeeded, 0 failed of 1 stack" in line for line in lines)
    assert lines[-1].endswith("exit code 0")
    text = log.read_text()
    assert "\x1b[" not in text and pg.password not in text

    status = kroot.run("status")
    assert status.code == 0, status
    row = next(line for line in status.lines if line.startswith(stack))
    assert dump.name in row and "verified" in row and "db:export" in row
    data = json.loads(kroot.run("status", "--json").stdout)["stacks"]
    [mine] = [d for d in data if d["stack"] == stack]
    assert mine["newest_dump"] == dump.name and mine["verification"] == "verified"
    assert mine["size"] == dump.stat().st_size and mine["next_run"]

    cron_file = kroot.path / "cron.d-kompose"
    assert kroot.run("cron", "--install", "--cron-file", str(cron_file)).code == 0
    check = kroot.run("cron", "--check", "--cron-file", str(cron_file), "--json")
    report = json.loads(check.stdout)
    states = {(r["stack"], r["command"]): r["state"] for r in report["schedules"]}
    assert states == {(stack, "db:export"): "ok", (stack, "db:drill"): "overdue"}  # no drill has run yet
    assert report["crontab"]["state"] == "ok" and check.code == 1
    assert kroot.run(stack, "db:drill").code == 0
    assert kroot.run("cron", "--check", "--cron-file", str(cron_file)).code == 0
