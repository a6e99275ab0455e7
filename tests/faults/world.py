"""The world fault scenarios run in: a PostgreSQL container, a root of stacks, kompose as a killable process.

Used by the pytest suite (tests/faults) and by scripts/faults, so nothing here depends on pytest.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from tests.helpers import (
    PG_IMAGE,
    TEST_LABEL,
    Postgres,
    Result,
    build_tree,
    kompose_env,
    remove_by_prefix,
    run_kompose,
    wait_for,
)

DUMP_NAME = re.compile(r"^(?P<db>.+)_\d{8}_\d{6}\.(?P<ext>sql|dump)$")

# a stand-in app: never started by these tests (the database container is named by DB_CONTAINER)
COMPOSE = """\
services:
  app:
    image: kompose/app:latest
    pull_policy: never
    command: ["sleep", "3600"]
"""


# ----------------------------------------------------------------- the server


def start_server(client, prefix: str, password: str, user: str = "kompose") -> Postgres:
    """A PostgreSQL container whose data survives a stop (no tmpfs) and that stops fast (SIGINT)."""
    container = client.containers.run(
        PG_IMAGE,
        name=f"{prefix}pg",
        detach=True,
        environment={"POSTGRES_USER": user, "POSTGRES_PASSWORD": password, "POSTGRES_DB": "postgres"},
        labels={TEST_LABEL: prefix},
        stop_signal="SIGINT",  # PostgreSQL's fast shutdown: a stop does not wait for sessions
    )
    return Postgres(container, user=user, database="postgres", password=password).wait_ready(90)


def restart(server: Postgres) -> None:
    server.container.start()
    server.wait_ready(90)


def seed(server: Postgres, database: str, rows: int, variant: str = "a") -> None:
    """A database with a big table (~120 bytes a row), a small one, a sequence and a view."""
    server.sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)', database="postgres")
    server.sql(f'CREATE DATABASE "{database}"', database="postgres")
    server.sql(
        f"""
        CREATE TABLE big AS
          SELECT g AS id, md5(g::text || '{variant}') || md5((g * 7)::text) || md5((g * 13)::text) AS payload
          FROM generate_series(1, {rows}) AS g;
        ALTER TABLE big ADD PRIMARY KEY (id);
        CREATE TABLE canary (id serial PRIMARY KEY, note text NOT NULL);
        INSERT INTO canary (note) VALUES ('variant {variant}'), ('second row {variant}');
        CREATE VIEW canary_notes AS SELECT note FROM canary;
        """,
        database=database,
    )


def clone(server: Postgres, template: str, database: str) -> None:
    """``database`` as a fresh copy of ``template`` (dropped first)."""
    server.sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)', database="postgres")
    server.sql(f'CREATE DATABASE "{database}" TEMPLATE "{template}"', database="postgres")


_FINGERPRINT = (
    "SELECT md5(concat_ws('|',"
    " (SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'),"
    " (SELECT count(*) || ':' || md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t.id), '')) FROM big t),"
    " (SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t.id), '')) FROM canary t),"
    " (SELECT last_value FROM canary_id_seq)))"
)


def fingerprint(server: Postgres, database: str) -> str:
    """One checksum of a seeded database in one query: its table list, both tables' rows
    (order ignored) and the sequence."""
    return server.sql(_FINGERPRINT, database=database)[:16]


def databases(server: Postgres) -> set[str]:
    return set(server.databases())


def snapshot(server: Postgres, database: str) -> tuple[str, str]:
    """(the server's database names, ``database``'s fingerprint) in one psql run: what a
    bad-input case compares before and after."""
    names = "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database WHERE NOT datistemplate;"
    code, output = server.exec(["sh", "-c", 'psql -X -q -At -v ON_ERROR_STOP=1 -U "$1" -d postgres -c "$2" '
                                '&& psql -X -q -At -v ON_ERROR_STOP=1 -U "$1" -d "$3" -c "$4"', "sh",
                                server.user, names, database, _FINGERPRINT])
    if code != 0:
        raise AssertionError(f"snapshot failed: {output}")
    listing, print_ = output.strip().splitlines()
    return listing, print_[:16]


def allows_connections(server: Postgres, database: str) -> bool:
    return server.sql(f"SELECT datallowconn FROM pg_database WHERE datname = '{database}'") == "t"


def hold_lock(server: Postgres, database: str, table: str, seconds: int = 60, name: str = "faults-locker") -> None:
    """A session (application_name ``name``) that holds an ACCESS EXCLUSIVE lock on ``table`` for
    ``seconds``; returns once the server has granted it, so a pg_dump started next waits on it."""
    api = server.container.client.api
    exec_id = api.exec_create(
        server.container.id,
        ["psql", "-X", "-U", server.user, "-d", database, "-c",
         f"BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep({seconds});"],
        environment={"PGAPPNAME": name})["Id"]
    api.exec_start(exec_id, detach=True)
    wait_for(lambda: name in server.sql(
        "SELECT coalesce(string_agg(application_name, ','), '') FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
        "WHERE l.mode = 'AccessExclusiveLock' AND l.granted", database="postgres"),
        timeout=30, message=f"{name}'s lock on {table}")


def wait_settled(server: Postgres, timeout: float = 30) -> None:
    """Wait until no client session except ours runs: an orphaned restore or swap has finished."""

    def quiet() -> bool:
        try:
            return server.sql(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
                "AND pid <> pg_backend_pid()"
            ) == "0"
        except AssertionError:
            return False

    wait_for(quiet, timeout=timeout, interval=0.1, message="orphaned database sessions to end")


def make_dump(server: Postgres, database: str, path: Path, fmt: str = "plain") -> Path:
    """pg_dump inside the container (not through kompose), written to ``path``."""
    argv = ["pg_dump", "-U", server.user, "-d", database] + (["--format=custom"] if fmt == "custom" else [])
    exec_id = server.container.client.api.exec_create(server.container.id, argv, stdout=True, stderr=False)["Id"]
    with open(path, "wb") as handle:
        for chunk in server.container.client.api.exec_start(exec_id, stream=True):
            handle.write(chunk)
    code = server.container.client.api.exec_inspect(exec_id)["ExitCode"]
    assert code == 0, f"pg_dump of {database} failed with exit code {code}"
    return path


# ------------------------------------------------------------------ the dumps


def final_dumps(directory: Path) -> list[Path]:
    """Files that carry a final dump name (what a user or cleanup would take for a dump)."""
    return sorted(p for p in directory.iterdir() if DUMP_NAME.match(p.name))


def partials(directory: Path) -> list[Path]:
    """The partial dump files (and pipes) in ``directory``. Hidden ones are kompose's state files
    (``.kompose-last-run.json.partial`` of a run killed while recording), not dumps."""
    return sorted(p for p in directory.glob("*.partial") if not p.name.startswith("."))


def plain_content_hash(path: Path) -> str:
    """sha256 of a plain dump without pg_dump 15.14+'s random \\restrict / \\unrestrict lines."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for line in handle:
            if not line.startswith((b"\\restrict ", b"\\unrestrict ")):
                digest.update(line)
    return digest.hexdigest()


def custom_dump_reads_back(server: Postgres, path: Path) -> bool:
    """A custom dump read back whole by the server's pg_restore: its table of contents
    (``--list``) and every data block (``--file=/dev/null``), both fed through stdin."""
    return all(_pg_restore_stdin(server, path, option) for option in ("--list", "--file=/dev/null"))


def _pg_restore_stdin(server: Postgres, path: Path, option: str) -> bool:
    import socket

    api = server.container.client.api
    exec_id = api.exec_create(server.container.id, ["pg_restore", option], stdin=True, stdout=True,
                              stderr=True)["Id"]
    sock = api.exec_start(exec_id, socket=True)
    raw = getattr(sock, "_sock", sock)
    raw.settimeout(60)
    drained = threading.Thread(target=lambda: _drain(raw), daemon=True)
    drained.start()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                raw.sendall(chunk)
        raw.shutdown(socket.SHUT_WR)
    except OSError:
        pass  # pg_restore --list stops reading after the table of contents: its exit code tells
    drained.join(60)
    sock.close()
    deadline = time.monotonic() + 30
    while (info := api.exec_inspect(exec_id))["Running"] and time.monotonic() < deadline:
        time.sleep(0.05)
    return info["ExitCode"] == 0


def _drain(sock) -> None:
    try:
        while sock.recv(65536):
            pass
    except OSError:
        pass


def tree_state(directory: Path, ignore: Iterable[str] = (".kompose.lock", ".kompose.lock.info", ".kompose-last-run.json",
                                                  ".kompose-drill.json")) -> dict[str, str]:
    """{relative path: sha256} of every file under ``directory`` (what "nothing changed" compares)."""
    skip = set(ignore)
    state = {}
    for path in sorted(directory.rglob("*")):
        if path.name in skip or path.is_dir():
            continue
        if path.is_symlink():
            state[str(path.relative_to(directory))] = "-> " + os.readlink(path)
            continue
        if not path.is_file():  # a FIFO (hostile input): never opened
            state[str(path.relative_to(directory))] = "not a regular file"
            continue
        state[str(path.relative_to(directory))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state


# ------------------------------------------------------- kompose as a process


@dataclass
class Line:
    at: float  # seconds since start
    text: str


@dataclass
class Spawned:
    """A running kompose whose output lines are collected (with times) as they come."""

    process: subprocess.Popen
    started: float
    lines: list[Line] = field(default_factory=list)
    _reader: threading.Thread | None = None

    def wait_line(self, needle: str, timeout: float = 60) -> Line | None:
        """The first line containing ``needle``, waiting for it; None when kompose ended without it."""
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            for line in self.lines[seen:]:
                if needle in line.text:
                    return line
            seen = len(self.lines)
            if self.process.poll() is not None and not (self._reader and self._reader.is_alive()):
                for line in self.lines[seen:]:
                    if needle in line.text:
                        return line
                return None
            time.sleep(0.005)
        raise AssertionError(f"no line with {needle!r} within {timeout}s:\n{self.text()}")

    def kill(self, sig: int = signal.SIGKILL) -> bool:
        """Signal kompose alone (not its hooks); True when it was still running."""
        if self.process.poll() is not None:
            return False
        self.process.send_signal(sig)
        return True

    def wait(self, timeout: float = 120) -> int:
        code = self.process.wait(timeout)
        if self._reader:
            self._reader.join(10)
        return code

    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)


def spawn(root: Path, *args: str, env: dict[str, str] | None = None, stdout_path: Path | None = None) -> Spawned:
    """Start ``python -m kompose --root ROOT ARGS`` with stderr merged into stdout.

    kompose runs in its own session, as cron would start it. With ``stdout_path`` the
    output goes to that file instead of being collected.
    """
    argv = [sys.executable, "-m", "kompose", "--root", str(root), *args]
    out = open(stdout_path, "wb") if stdout_path else subprocess.PIPE
    process = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=kompose_env(env),
        start_new_session=True,
    )
    if stdout_path:
        out.close()
    spawned = Spawned(process, time.monotonic())
    if not stdout_path:
        def read() -> None:
            for raw in process.stdout:
                spawned.lines.append(Line(time.monotonic() - spawned.started, raw.decode("utf-8", "replace").rstrip("\n")))
        spawned._reader = threading.Thread(target=read, daemon=True)
        spawned._reader.start()
    return spawned


def pids_with(marker: str) -> list[int]:
    """Host processes whose command line contains ``marker``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                args = handle.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if marker in args and int(entry) != os.getpid():
            found.append(int(entry))
    return found


def kill_marked(marker: str) -> None:
    """Clean up after a test: SIGKILL processes carrying ``marker`` (ones this test started)."""
    for pid in pids_with(marker):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# ------------------------------------------------------------------- the lab


@dataclass
class Lab:
    """A server plus a root of stacks; everything named with ``prefix`` and removed by :meth:`close`."""

    client: object
    prefix: str
    root: Path
    server: Postgres
    password: str

    @classmethod
    def open(cls, client, workdir: Path, password: str | None = None) -> "Lab":
        prefix = f"kf{secrets.token_hex(3)}-"
        password = password or f"pw-{secrets.token_hex(6)}"
        root = workdir / "root"
        build_tree(root, {".env": f"NETWORK_NAME={prefix}net\n"})
        server = start_server(client, prefix, password)
        return cls(client, prefix, root, server, password)

    def close(self) -> None:
        remove_by_prefix(self.client, self.prefix)

    def stack(self, short: str, database: str, hooks: str | None = None, env: str = "",
              password: str | None = None) -> Path:
        """A stack dir whose database is ``database`` on the lab's server (DB_CONTAINER)."""
        spec = {
            "compose.yaml": COMPOSE,
            ".env": (
                f"DB_CONTAINER={self.server.container.name}\nDB_NAME={database}\nDB_USER={self.server.user}\n"
                f"DB_PASSWORD={self.password if password is None else password}\n{env}"
            ),
        }
        if hooks is not None:
            spec["hooks.sh"] = hooks
        return build_tree(self.root / short, spec)

    def run(self, *args: str, env: dict[str, str] | None = None, timeout: float = 180) -> Result:
        return run_kompose(*args, root=self.root, env=env, timeout=timeout)

    def spawn(self, *args: str, env: dict[str, str] | None = None, stdout_path: Path | None = None) -> Spawned:
        return spawn(self.root, *args, env=env, stdout_path=stdout_path)


# ------------------------------------------------------------------ reporting


@dataclass
class Row:
    """One line of the faults table."""

    case: str
    expected: str
    observed: str
    ok: bool
    group: str = ""


def render_table(rows: list[Row], limits: tuple[int, int, int, int] = (50, 52, 110, 4)) -> str:
    """A plain-text table, one row a line; long cells are cut with '…'."""
    headers = ("case", "expected", "observed", "")
    cells = [tuple(_cut(text, limit) for text, limit in zip((r.case, r.expected, r.observed, "ok" if r.ok else "FAIL"),
                                                            limits)) for r in rows]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(headers)]
    lines = [" | ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip(),
             "-+-".join("-" * w for w in widths)]
    for cell in cells:
        lines.append(" | ".join(c.ljust(w) for c, w in zip(cell, widths)).rstrip())
    return "\n".join(lines)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"

