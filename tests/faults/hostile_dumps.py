"""Hostile and damaged dumps (issue 16.1, 15.9): whatever a dump holds, an import touches only
the temporary database; a dump changed after its manifest is never called verified, and
retention never deletes the only intact dump for it."""

from __future__ import annotations

import json
import os
import re

from tests.faults import world
from tests.faults.world import Lab, Row

ROWS = 2000
PWNED = "/tmp/kompose-faults-pwned"


def _pg_dump(lab: Lab, database: str, *args: str) -> bytes:
    code, output = lab.server.container.exec_run(["pg_dump", "-U", lab.server.user, *args, database], demux=True)
    assert code == 0, output
    return output[0]


def _fresh(lab: Lab) -> tuple[str, str]:
    """hd_live back to variant a, no previous copy; (live name, its fingerprint)."""
    server = lab.server
    world.clone(server, "hd_seed_a", "hd_live")
    server.drop_database("hd_live__kompose_prev")
    server.drop_database("hd_live__kompose_tmp")
    server.exec(["rm", "-f", PWNED])
    return "hd_live", world.fingerprint(server, "hd_live")


def _late_row(lab: Lab) -> str:
    """A row written after the dump: it must survive (in the previous copy at least)."""
    lab.server.sql("INSERT INTO canary (note) VALUES ('written after the dump')", database="hd_live")
    return world.fingerprint(lab.server, "hd_live")


def _one_line(result) -> bool:
    return "Traceback" not in result.output and result.code != 0


def cases(lab: Lab) -> list[Row]:
    server = lab.server
    world.seed(server, "hd_seed_a", ROWS, "a")
    world.seed(server, "hd_other", ROWS + 3, "o")
    stack = lab.stack("hostile", "hd_live")
    rows: list[Row] = []

    def dump_file(data: bytes, stamp: str = "20240101_000000") -> str:
        for old in stack.glob("hd_live_*"):
            old.unlink()
        path = stack / f"hd_live_{stamp}.sql"
        path.write_bytes(data)
        return path.name

    # --clean --create of the live database itself: neutralised, restored into the temporary one
    live, a = _fresh(lab)
    name = dump_file(_pg_dump(lab, live, "--clean", "--create"))
    late = _late_row(lab)
    result = lab.run("hostile", "db:import", name)
    ok = (result.code == 0 and world.fingerprint(server, live) == a
          and world.fingerprint(server, live + "__kompose_prev") == late and "neutralised" in result.output)
    rows.append(Row("plain --clean --create dump of the live database", "exit 0; live = dump; late rows in previous",
                    f"exit {result.code}; {'neutralised' if 'neutralised' in result.output else 'not neutralised'}",
                    ok, "hostile"))

    # --create dump of another database under this one's file name
    live, a = _fresh(lab)
    other = world.fingerprint(server, "hd_other")
    name = dump_file(_pg_dump(lab, "hd_other", "--clean", "--create"))
    result = lab.run("hostile", "db:import", name)
    ok = (_one_line(result) and "is a dump of database hd_other" in result.output
          and world.fingerprint(server, live) == a and world.fingerprint(server, "hd_other") == other)
    rows.append(Row("--create dump of another database, this one's name", "refused; live and the other untouched",
                    f"exit {result.code}; " + next((l.strip() for l in result.lines if "✗" in l), result.last_line),
                    ok, "hostile"))

    # commands a pg_dump file never holds, put where psql would run them
    _fresh(lab)
    plain = _pg_dump(lab, "hd_live", "--create")
    marker = b"SET default_tablespace = '';\n"
    for line in [f"\\! touch {PWNED}", f"\\o | touch {PWNED}", f"\\copy canary FROM PROGRAM 'touch {PWNED}'",
                 f"COPY canary FROM PROGRAM 'touch {PWNED}';", "\\connect postgres",
                 "SELECT 1 \\g | sh", "SET standard_conforming_strings = off;"]:
        live, a = _fresh(lab)
        name = dump_file(plain.replace(marker, marker + line.encode() + b"\n", 1))
        result = lab.run("hostile", "db:import", name)
        ran = server.exec(["test", "-e", PWNED])[0] == 0
        ok = (_one_line(result) and "kompose does not restore it" in result.output and not ran
              and world.fingerprint(server, live) == a and live + "__kompose_tmp" not in world.databases(server))
        rows.append(Row(f"dump holding {line[:34]}", "refused, nothing ran, live untouched",
                        f"exit {result.code}; {'RAN' if ran else 'did not run'}; "
                        + next((l.strip() for l in result.lines if "does not restore" in l), result.last_line),
                        ok, "hostile"))

    # a restore that leaves a table out is never swapped in
    live, a = _fresh(lab)
    end = b"--\n-- PostgreSQL database dump complete\n--\n"
    name = dump_file(_pg_dump(lab, "hd_seed_a").replace(end, b"DROP TABLE public.canary CASCADE;\n" + end))
    result = lab.run("hostile", "db:import", name)
    ok = _one_line(result) and "lacks 1 table(s)" in result.output and world.fingerprint(server, live) == a
    rows.append(Row("restore that drops one of its tables", "refused before the swap, live untouched",
                    f"exit {result.code}; " + next((l.strip() for l in result.lines if "✗" in l), result.last_line),
                    ok, "hostile"))

    rows += _verified_means_checked(lab, stack)
    return rows


def _verified_means_checked(lab: Lab, stack) -> list[Row]:
    rows: list[Row] = []
    for old in stack.glob("hd_live_*"):
        old.unlink()
    _fresh(lab)
    assert lab.run("hostile", "db:export").code == 0
    (intact,) = stack.glob("hd_live_*.sql")
    # a second export a second later: the newest
    os.rename(intact, intact.with_name("hd_live_20240101_000000.sql"))
    os.rename(intact.with_name(intact.name + ".json"), intact.with_name("hd_live_20240101_000000.sql.json"))
    intact = intact.with_name("hd_live_20240101_000000.sql")
    data = json.loads(intact.with_name(intact.name + ".json").read_text())
    data["file"] = intact.name
    intact.with_name(intact.name + ".json").write_text(json.dumps(data))
    assert lab.run("hostile", "db:export").code == 0
    newest = max(stack.glob("hd_live_*.sql"))
    stat = newest.stat()
    body = bytearray(newest.read_bytes())
    body[body.index(b"variant a")] = ord("V")  # same size
    newest.write_bytes(bytes(body))
    listing = lab.run("hostile", "db:list")
    row = next((line for line in listing.lines if newest.name in line), "")
    rows.append(Row("dump corrupted in place, same size", "db:list: not verified",
                    re.sub(r"\s+", " ", row.strip())[:110], "changed (" in row, "hostile"))
    os.utime(newest, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # and its mtime put back
    result = lab.run("hostile", "db:cleanup", "--keep-last", "1")
    ok = result.code == 0 and intact.exists()
    rows.append(Row("…mtime put back, db:cleanup --keep-last 1", "keeps the intact older dump (sha256 checked)",
                    f"exit {result.code}; intact {'kept' if intact.exists() else 'DELETED'}", ok, "hostile"))
    # rows cut out, the manifest's sha256 brought up to date: the row counts tell
    _fresh(lab)
    for old in stack.glob("hd_live_*"):
        old.unlink()
    assert lab.run("hostile", "db:export").code == 0
    (dump,) = stack.glob("hd_live_*.sql")
    text = dump.read_bytes()
    start = text.index(b"COPY public.big ")
    body_start = text.index(b"\n", start) + 1
    end = text.index(b"\n\\.\n", body_start) + 1
    lines = text[body_start:end].splitlines(keepends=True)
    dump.write_bytes(text[:body_start] + b"".join(lines[: len(lines) // 2]) + text[end:])
    from kompose.dumps import manifest

    path = manifest.path_of(dump)
    data = json.loads(path.read_text())
    data.update(sha256=manifest.sha256_file(dump), size=dump.stat().st_size, mtime_ns=dump.stat().st_mtime_ns)
    path.write_text(json.dumps(data))
    verify = lab.run("hostile", "db:verify")
    drill = lab.run("hostile", "db:drill")
    imported = lab.run("hostile", "db:import")
    ok = all(r.code == 1 and ("row counts differ" in r.output or "its manifest records" in r.output)
             for r in (verify, drill, imported))
    rows.append(Row("rows cut out, manifest sha256 updated", "db:verify, db:drill, db:import fail on row counts",
                    f"exits {verify.code}, {drill.code}, {imported.code}", ok, "hostile"))
    return rows
