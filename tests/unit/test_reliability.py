"""Pure logic behind the reliability promises: names that cannot escape, dumps that say where they
come from, bounded hook output, the exit-code rule. No Docker (the fault suite covers the rest)."""

from __future__ import annotations

import io
import struct
import threading
import time
from pathlib import Path

import pytest

from kompose.dumps import files as dumps
from kompose.docker import exec as docker_exec
from kompose.host import processes as execute
from kompose.hooks import points as hooks
from kompose.engines.postgres import sql as postgres
from kompose.actions.db_import import check_origin, find_dump
from kompose.errors import ConfigError, DumpError, NoStackError
from kompose.run.outcomes import Outcome, exit_code
from kompose.stacks import discover, select

# ------------------------------------------------------------------ names


@pytest.mark.parametrize("name", ["app", "my-app", "a'b", 'a"b', "x;y", "$(id)", "ünï"])
def test_plain_database_names_go_to_dbname_as_they_are(name):
    assert postgres.dbname_arg(name) == f"--dbname={name}"


@pytest.mark.parametrize(
    "name, expected",
    [
        ("dbname=app", "--dbname=dbname='dbname=app'"),
        ("app host=elsewhere", "--dbname=dbname='app host=elsewhere'"),
        ("a'b=c", "--dbname=dbname='a\\'b=c'"),
        ("back\\slash=1", "--dbname=dbname='back\\\\slash=1'"),
        ("postgres://x", "--dbname=dbname='postgres://x'"),
    ],
)
def test_names_libpq_would_read_as_connection_strings_are_quoted(name, expected):
    assert postgres.dbname_arg(name) == expected


def test_every_tool_gets_the_quoted_dbname():
    conn = postgres.Connection("a=b", "u", "secret", "5432")
    quoted = "--dbname=dbname='a=b'"
    assert quoted in postgres.pg_dump_argv(conn, "plain")
    assert quoted in postgres.restore_argv(conn, "a=b", "plain")
    assert quoted in postgres.restore_argv(conn, "a=b", "custom")
    assert "--dbname=postgres" in postgres.psql_script_argv(conn, "postgres", ())


@pytest.mark.parametrize(
    "name, message",
    [
        ("bi\nlive", "control character"),
        ("tab\there", "control character"),
        ("a/b", "contains '/'"),
        ("../../etc/cron.d/x", "contains '/'"),
        ("x\x00y", "NUL"),
        ("d" * 64, "too long"),
    ],
)
def test_database_names_kompose_refuses(name, message):
    with pytest.raises(ConfigError, match=message):
        postgres.connection({"DB_NAME": name}, "app")


def test_the_password_is_never_in_argv():
    conn = postgres.connection({"DB_NAME": "app", "DB_PASSWORD": "canary-123"}, "app")
    for argv in (postgres.pg_dump_argv(conn, "plain"), postgres.restore_argv(conn, "app", "custom"),
                 postgres.psql_script_argv(conn, "postgres", postgres.variables(conn))):
        assert not any("canary-123" in word for word in argv)
    assert dict(conn.exec_env()) == {"PGPASSWORD": "canary-123"}


def test_recover_says_what_it_cleaned_only_when_it_cleaned():
    # each repair is guarded by \if and followed by the row that tells it
    for script in (postgres.RECOVER, postgres.ABANDON):
        drop = script.index('DROP DATABASE IF EXISTS :"tmp"', script.index(r"\if :tmp_exists"))
        assert script.rindex(r"\if :tmp_exists", 0, drop) < drop < script.index("dropped the")
        assert script.index("ALTER DATABASE :\"live\" ALLOW_CONNECTIONS true") < script.index("re-opened")
    assert "leftover" in postgres.RECOVER and "leftover" not in postgres.ABANDON


def test_lost_connection_is_told_apart_from_a_wrong_password():
    assert postgres.lost_connection(b"FATAL:  terminating connection due to administrator command")
    assert postgres.lost_connection(b"server closed the connection unexpectedly")
    assert not postgres.lost_connection(
        b'connection to server at "127.0.0.1", port 5432 failed: FATAL:  password authentication failed'
    )


# ------------------------------------------------------------------ dumps


def _custom_header(database: str, version: tuple[int, int, int] = (1, 14, 0), int_size: int = 4) -> bytes:
    def integer(value: int) -> bytes:
        return bytes([1 if value < 0 else 0]) + abs(value).to_bytes(int_size, "little")

    head = b"PGDMP" + bytes(version) + bytes([int_size, 8, 1])
    head += bytes([0]) if version >= (1, 15) else integer(-1)
    head += b"".join(integer(v) for v in (5, 4, 3, 2, 1, 124, 0))
    name = database.encode()
    return head + integer(len(name)) + name + integer(4) + b"15.4" + b"\x00" * 64


@pytest.mark.parametrize("version", [(1, 14, 0), (1, 15, 0), (1, 12, 0)])
def test_the_database_name_in_a_custom_archive_header(version):
    assert dumps._custom_archive_database(_custom_header("shop_prod", version)) == "shop_prod"


@pytest.mark.parametrize("head", [b"PGDMP", b"PGDMP\x01\x0e\x00\x04", b"PGDMP" + bytes([1, 14, 0, 4, 8, 1]) + b"\x00"])
def test_a_short_or_odd_header_tells_nothing(head):
    assert dumps._custom_archive_database(head) is None


def test_dump_database_reads_the_header_then_the_name(tmp_path):
    custom = tmp_path / "renamed_20240101_000000.dump"
    custom.write_bytes(_custom_header("shop_prod"))
    plain = tmp_path / "shop_20240101_000000.sql"
    plain.write_text("-- PostgreSQL database dump\n")
    loose = tmp_path / "backup.sql"
    loose.write_text("-- PostgreSQL database dump\n")
    assert dumps.dump_database(custom) == "shop_prod"
    assert dumps.dump_database(plain) == "shop"
    assert dumps.dump_database(loose) is None


def test_a_dump_of_another_database_is_refused_unless_allowed(tmp_path):
    other = tmp_path / "shop_prod_20240101_000000.sql"
    other.write_text("-- PostgreSQL database dump\n")
    with pytest.raises(DumpError, match="dump of database shop_prod, not shop_staging"):
        check_origin(other, "shop_staging", allow_other=False)
    check_origin(other, "shop_staging", allow_other=True)
    check_origin(other, "shop_prod", allow_other=False)


def test_a_dump_outside_the_stack_directory_is_refused(tmp_path, monkeypatch):
    stack = tmp_path / "root" / "app"
    stack.mkdir(parents=True)
    (stack / "app_20240101_000000.sql").write_text("-- x\n")
    outside = tmp_path / "app_20240101_000000.sql"
    outside.write_text("-- x\n")
    (stack / "link.sql").symlink_to(outside)
    monkeypatch.chdir(tmp_path / "root")
    assert find_dump(stack, "app", "app_20240101_000000.sql") == (stack / "app_20240101_000000.sql").resolve()
    assert find_dump(stack, "app", "app/app_20240101_000000.sql") == (stack / "app_20240101_000000.sql").resolve()
    for given in (str(outside), "../app_20240101_000000.sql", "link.sql"):
        with pytest.raises(DumpError, match="outside the stack.s dump directory"):
            find_dump(stack, "app", given)


# ------------------------------------------------------------------ stacks, hooks, exit codes


def test_a_stack_symlinked_outside_the_root_is_named_as_such(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "app").mkdir(parents=True)
    (root / "app" / "compose.yaml").write_text("services: {}\n")
    outside.mkdir()
    (outside / "compose.yaml").write_text("services: {}\n")
    (root / "evil").symlink_to(outside)
    with pytest.raises(NoStackError, match="evil is a symlink to .*outside the root"):
        select(discover(root), "evil", root)
    with pytest.raises(NoStackError, match="no stack matches"):
        select(discover(root), "nothing", root)


@pytest.mark.parametrize("raw", ["soon", "0", "-1", "nan", "inf"])
def test_a_bad_hook_timeout_is_a_config_error(raw):
    with pytest.raises(ConfigError, match="KOMPOSE_HOOK_TIMEOUT"):
        hooks.timeout({"KOMPOSE_HOOK_TIMEOUT": raw})


def test_a_failure_wins_over_a_skipped_stack():
    skipped, failed, ok = Outcome("a", "skipped"), Outcome("b", "failed"), Outcome("c", "ok")
    assert exit_code([ok, skipped]) == 4
    assert exit_code([skipped, failed, ok]) == 1
    assert exit_code([ok]) == 0


# ------------------------------------------------------------------ bounded output


class _Trickle(io.RawIOBase):
    """A raw file that takes at most 3 bytes a write, as a filling disk may."""

    def __init__(self):
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, chunk) -> int:
        self.data += bytes(chunk[:3])
        return min(3, len(chunk))


def test_partial_writes_are_completed():
    sink = _Trickle()
    docker_exec._write_all(sink, b"0123456789")
    assert bytes(sink.data) == b"0123456789"


def test_a_muted_pump_keeps_draining_but_shows_nothing(tmp_path):
    import os

    read_end, write_end = os.pipe()
    shown: list[str] = []
    muted = threading.Event()
    pump = threading.Thread(target=execute._pump, args=(os.fdopen(read_end, "rb"), shown.append, muted))
    pump.start()
    os.write(write_end, b"before\n")
    time.sleep(0.2)
    muted.set()
    for _ in range(200):  # 200 × 8 KiB: more than a pipe holds, so a stalled reader would block us
        os.write(write_end, b"x" * 8191 + b"\n")
    os.close(write_end)
    pump.join(5)
    assert shown == ["before"]


def _hook(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "hooks.sh"
    path.write_text(f"hook_x() {{\n{body}\n}}\n")
    return path


def test_a_hook_that_reads_stdin_gets_eof(tmp_path):
    lines: list[str] = []
    started = time.monotonic()
    execute.run_hook(_hook(tmp_path, "cat; read -r x || echo eof"), "hook_x", [], {"PATH": "/usr/bin:/bin"},
                     tmp_path, 30, lines.append)
    assert lines == ["eof"] and time.monotonic() - started < 5


def test_wait_in_a_hook_does_not_wait_for_kompose_s_watcher(tmp_path):
    started = time.monotonic()
    execute.run_hook(_hook(tmp_path, "sleep 0.2 & wait"), "hook_x", [], {"PATH": "/usr/bin:/bin"},
                     tmp_path, 30, lambda line: None)
    assert time.monotonic() - started < 3


def test_a_background_child_holding_the_output_is_left_and_reported(tmp_path):
    lines: list[str] = []
    started = time.monotonic()
    result = execute.run_hook(
        _hook(tmp_path, "(for i in $(seq 100); do echo bg; sleep 0.1; done) & echo done"), "hook_x", [],
        {"PATH": "/usr/bin:/bin"}, tmp_path, 30, lines.append,
    )
    elapsed = time.monotonic() - started
    count = len(lines)
    time.sleep(0.5)
    assert result.lingering and elapsed < execute.BACKGROUND_GRACE + 2
    assert len(lines) == count, "output of a lingering child went on being shown"


def test_header_struct_matches_docker_frames():
    # the frame parser reads what the engine writes: stream id, 3 zero bytes, big-endian length
    frame = bytes([1, 0, 0, 0]) + struct.pack(">I", 3) + b"abc"
    out: list[bytes] = []

    class Sock:
        def __init__(self, data: bytes):
            self.data = data

        def recv(self, size: int) -> bytes:
            chunk, self.data = self.data[:size], self.data[size:]
            return chunk

    docker_exec._read_frames(Sock(frame), out.append, out.append)
    assert out == [b"abc"]
