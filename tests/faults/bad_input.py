"""Bad input: each case expects one clear error line, a non-zero exit and nothing changed.

"Nothing changed" is checked three ways: the files under the case's root (hashes), the set
of databases on the server, and the checksum of the stack's live database.
"""

from __future__ import annotations

import gzip
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tests.faults import world
from tests.faults.world import Lab, Row
from tests.helpers import TEST_LABEL, build_tree, run_kompose

LIVE = "bi_live"
OTHER = "bi_other"
ERROR_LINE = re.compile(r"^(error: |  ✗ )")


@dataclass
class Fixtures:
    """What the cases share: the lab and reference dumps made once."""

    lab: Lab
    workdir: Path
    plain: Path  # a complete plain dump of bi_live
    custom: Path  # a complete custom dump of bi_live
    other_custom: Path  # a complete custom dump of bi_other
    stopped_container: str


@dataclass
class Case:
    name: str
    args: tuple[str, ...]
    expect: str  # must appear in the one error line
    code: int = 1
    env_extra: str = ""
    env: str | bytes | None = None  # replaces the stack's whole .env
    hooks: str | None = None
    root_env: str | bytes | None = None
    process_env: dict[str, str] = field(default_factory=dict)
    setup: Callable[[Fixtures, Path, Path], None] | None = None  # (fixtures, root, stack dir)
    max_seconds: float = 30.0
    forbid: str = ""  # a path that must not exist afterwards
    forbid_text: str = ""  # text that must appear in no output (a secret value)
    marker: str = ""  # processes the case leaves on purpose carry this in their argv: killed afterwards


def _hook(body: str, point: str = "pre_db_export") -> str:
    return f"hook_{point}() {{\n{body}\n}}\n"


def _copy(name: str, source: str = "plain", transform: Callable[[bytes], bytes] | None = None):
    def setup(fx: Fixtures, root: Path, stack: Path) -> None:
        data = getattr(fx, source).read_bytes()
        (stack / name).write_bytes(transform(data) if transform else data)

    return setup


def _write(name: str, data: bytes):
    def setup(fx: Fixtures, root: Path, stack: Path) -> None:
        (stack / name).write_bytes(data)

    return setup


def _outside_symlink_stack(fx: Fixtures, root: Path, stack: Path) -> None:
    outside = root.parent / "outside-stack"
    build_tree(outside, {"compose.yaml": world.COMPOSE})
    (root / "evil").symlink_to(outside)


def _dump_outside(fx: Fixtures, root: Path, stack: Path) -> None:
    shutil.copy(fx.plain, root.parent / f"{LIVE}_20240101_000000.sql")


def _dump_sibling(fx: Fixtures, root: Path, stack: Path) -> None:
    (root / "elsewhere").mkdir()
    shutil.copy(fx.plain, root / "elsewhere" / f"{LIVE}_20240101_000000.sql")


def _dump_symlink_out(fx: Fixtures, root: Path, stack: Path) -> None:
    target = root.parent / "secret.sql"
    shutil.copy(fx.plain, target)
    (stack / f"{LIVE}_20240101_000000.sql").symlink_to(target)


def _failing_dump(data: bytes) -> bytes:
    # a complete-looking plain dump with one bad statement in the middle
    marker = b"\nCREATE TABLE public.canary"
    return data.replace(marker, b"\nSELECT * FROM no_such_table_anywhere;\n" + marker, 1)


DUMP = f"{LIVE}_20240101_000000.sql"
CUSTOM = f"{LIVE}_20240101_000000.dump"


def _bad_manifest(fx: Fixtures, root: Path, stack: Path) -> None:
    shutil.copy(fx.plain, stack / DUMP)
    (stack / (DUMP + ".json")).write_bytes(b'{"file": "\xff\xfe caf\xe9", "size": 1}')


def _fifo_dump(fx: Fixtures, root: Path, stack: Path) -> None:
    import os

    os.mkfifo(stack / DUMP)


def _newest_dump_symlinked_out(fx: Fixtures, root: Path, stack: Path) -> None:
    shutil.copy(fx.plain, stack / DUMP)  # an older dump of its own
    target = root.parent / "secret.sql"
    shutil.copy(fx.plain, target)
    (stack / f"{LIVE}_20250101_000000.sql").symlink_to(target)  # the newest


def _latin1_sql_hook(fx: Fixtures, root: Path, stack: Path) -> None:
    shutil.copy(fx.plain, stack / DUMP)
    (stack / "sql" / "pre_swap").mkdir(parents=True)
    (stack / "sql" / "pre_swap" / "10-guard.sql").write_bytes(b"-- r\xe9sum\xe9 of the guard\nSELECT 1;\n")


def cases(prefix: str) -> list[Case]:
    pwned = f"/tmp/{prefix}pwned"
    pwned_name = f"{prefix}pwned"  # relative: would land in kompose's working directory
    exit_code_cases = [
        Case(f"hook exits {code}", ("app", "db:export"), f"failed with exit code {code}",
             hooks=_hook(f"echo 'about to fail'\nreturn {code}"))
        for code in (2, 42, 126, 127, 255)
    ]
    return [
        # --- .env files
        Case(".env: unterminated double quote", ("app", "db:export"), "cannot parse", 2,
             env_extra='BROKEN="never closed\n'),
        Case(".env: unterminated single quote", ("app", "db:export"), "cannot parse", 2,
             env_extra="BROKEN='never closed\n"),
        Case(".env: binary bytes", ("app", "db:export"), "not UTF-8", 2, env_extra="JUNK=\udcff\udcfe\udc9c\n"),
        Case(".env: a NUL byte", ("app", "db:export"), "NUL byte", 2, env_extra="JUNK=a\x00b\n"),
        Case(".env: a line without '='", ("app", "db:export"), "has no '='", 2, env_extra="JUSTAWORD\n"),
        Case("root .env: a line without '='", ("app", "db:export"), "has no '='", 2,
             root_env="NETWORK_NAME=x\nROOTWORD\n"),
        Case(".env: DB_PORT not a number", ("app", "db:export"), "not a port number", 2, env_extra="DB_PORT=abc\n"),
        Case(".env: DB_NAME empty", ("app", "db:export"), "DB_NAME is not set", 2, env_extra="DB_NAME=\n"),
        Case(".env: KOMPOSE_HOOK_TIMEOUT not a number", ("app", "db:export"), "not a number of seconds", 2,
             env_extra="KOMPOSE_HOOK_TIMEOUT=soon\n", hooks=_hook("true")),
        Case("-e without '='", ("-e", "FOO", "app", "db:export"), "expected KEY=VALUE", 2),
        # --- hooks.sh
        Case("hooks.sh: unclosed brace", ("app", "db:export"), "syntax error", 2,
             hooks="hook_pre_db_export() {\n  echo hi\n"),
        Case("hooks.sh: if without then", ("app", "db:export"), "syntax error", 2,
             hooks="hook_pre_db_export() {\n  if true; fi\n}\n"),
        Case("hooks.sh: exits while sourced", ("app", "db:export"), "failed with exit code 5",
             hooks="exit 5\n" + _hook("true")),
        *exit_code_cases,
        Case("hook hangs (timeout 1 s)", ("app", "db:export"), "timed out after 1 s",
             env_extra="KOMPOSE_HOOK_TIMEOUT=1\n", hooks=_hook("sleep 60"), max_seconds=10),
        Case("hook reads stdin, then fails", ("app", "db:export"), "failed with exit code 9",
             hooks=_hook("read -r answer || return 9"), max_seconds=10),
        Case("hook cats stdin, then fails", ("app", "db:export"), "failed with exit code 4",
             hooks=_hook("cat\nreturn 4"), max_seconds=10),
        Case("hook floods 20 MB, then fails", ("app", "db:export"), "failed with exit code 3",
             hooks=_hook("head -c 20000000 /dev/zero | tr '\\0' 'z' | fold -w 500\nreturn 3"), max_seconds=90),
        Case("hook leaves a background process, then fails", ("app", "db:export"), "failed with exit code 6",
             hooks=_hook(f"bash -c 'sleep 30; : {prefix}bgfail' &\nreturn 6"), max_seconds=15,
             marker=f"{prefix}bgfail"),
        Case("hook_pre_swap fails (import)", ("app", "db:import", DUMP), "hook_pre_swap failed with exit code 7",
             hooks=_hook("return 7", "pre_swap"), setup=_copy(DUMP)),
        Case("hook_pre_db_import fails (import)", ("app", "db:import", DUMP), "failed with exit code 2",
             hooks=_hook("return 2", "pre_db_import"), setup=_copy(DUMP)),
        # --- hostile DB_NAMEs (none of these databases exists: kompose must say so and touch nothing)
        Case("DB_NAME with a double quote", ("app", "db:export"), "does not exist", env_extra="DB_NAME='bi\"x'\n"),
        Case("DB_NAME with quote and semicolon", ("app", "db:export"), "does not exist",
             env_extra=f"DB_NAME=\"bi'; DROP DATABASE {LIVE}; --\"\n"),
        Case("DB_NAME with $(…)", ("app", "db:export"), "does not exist",
             env_extra=f"DB_NAME='$(touch {pwned_name})'\n", forbid=pwned_name),
        Case("DB_NAME with backticks", ("app", "db:export"), "does not exist",
             env_extra=f"DB_NAME='`touch {pwned_name}`'\n", forbid=pwned_name),
        Case("DB_NAME with a path (../)", ("app", "db:export"), "contains '/'", 2,
             env_extra=f"DB_NAME='$(touch {pwned})/../../x'\n", forbid=pwned),
        Case("DB_NAME of 64 bytes", ("app", "db:export"), "too long", 2, env_extra=f"DB_NAME={'d' * 64}\n"),
        Case("DB_NAME too long with kompose's suffix", ("app", "db:export"), "too long", 2,
             env_extra=f"DB_NAME={'d' * 50}\n"),
        Case("DB_NAME with a newline", ("app", "db:export"), "control character", 2,
             env_extra='DB_NAME="bi\nlive"\n'),
        Case("DB_NAME that is a conninfo string", ("app", "db:export"), "does not exist",
             env_extra=f"DB_NAME='dbname={LIVE}'\n"),
        Case("DB_NAME that points at another host", ("app", "db:export"), "does not exist",
             env_extra=f"DB_NAME='{LIVE} host=192.0.2.1 connect_timeout=3'\n"),
        Case("DB_NAME that is a URI", ("app", "db:export"), "contains '/'", 2,
             env_extra=f"DB_NAME='postgresql://127.0.0.1/{LIVE}'\n"),
        # --- stack names and patterns
        Case("pattern ../x", ("../x", "db:export"), "not a path", 2),
        Case("pattern a/b", ("a/b", "db:export"), "not a path", 2),
        Case("pattern ..", ("..", "db:export"), "not a path", 2),
        Case("pattern with a space", ("my app", "db:export"), "no stack matches", 3),
        Case("pattern in unicode", ("bløg", "db:export"), "no stack matches", 3),
        Case("stack symlinked outside the root", ("evil", "db:export"), "outside the root", 3,
             setup=_outside_symlink_stack),
        Case("empty pattern", (",", "db:export"), "empty stack pattern", 2),
        Case("root is not a directory", ("--root", "/nonexistent/root", "app", "db:export"), "not a directory", 2),
        Case("unknown option before the pattern", ("-x", "app", "db:export"), "unknown option", 2),
        # --- dumps given to db:import
        Case("dump is a directory", ("app", "db:import", "adir"), "is a directory",
             setup=lambda fx, root, stack: (stack / "adir").mkdir()),
        Case("dump is empty", ("app", "db:import", DUMP), "is empty", setup=_write(DUMP, b"")),
        # a gzip dump is a real format (db:export --compress gzip); a truncated one is bad input
        Case("dump is a truncated dump, gzipped", ("app", "db:import", DUMP + ".gz"), "incomplete",
             setup=lambda fx, root, stack: (stack / (DUMP + ".gz")).write_bytes(
                 gzip.compress(fx.plain.read_bytes()[: fx.plain.stat().st_size // 2]))),
        Case("dump is truncated (plain)", ("app", "db:import", DUMP), "incomplete",
             setup=_copy(DUMP, transform=lambda data: data[: len(data) // 2])),
        Case("dump is truncated (custom)", ("app", "db:import", CUSTOM), "pg_restore failed",
             setup=_copy(CUSTOM, "custom", transform=lambda data: data[: len(data) // 2])),
        Case("dump is not a dump", ("app", "db:import", "notes.txt"), "not a PostgreSQL dump",
             setup=_write("notes.txt", b"just some notes\n")),
        Case("dump fails mid-restore", ("app", "db:import", DUMP), "psql failed",
             setup=_copy(DUMP, transform=_failing_dump)),
        Case("dump of another database (by name)", ("app", "db:import", f"{OTHER}_20240101_000000.sql"),
             f"dump of database {OTHER}", setup=_copy(f"{OTHER}_20240101_000000.sql")),
        Case("dump of another database (custom header)", ("app", "db:import", CUSTOM),
             f"dump of database {OTHER}", setup=_copy(CUSTOM, "other_custom")),
        Case("dump outside the stack dir (absolute)", ("app", "db:import", "{outside}"), "outside the stack",
             setup=_dump_outside),
        Case("dump outside the stack dir (../)", ("app", "db:import", f"../elsewhere/{DUMP}"), "outside the stack",
             setup=_dump_sibling),
        Case("dump symlinked outside the stack dir", ("app", "db:import", DUMP), "outside the stack",
             setup=_dump_symlink_out),
        Case("dump not found", ("app", "db:import", "nope.sql"), "not found"),
        Case("no dump at all", ("app", "db:import"), "run db:export first"),
        # --- the engine, the container, the credentials
        Case("container missing", ("app", "db:export"), "no such container",
             env_extra="DB_CONTAINER=kompose-no-such-container\n"),
        Case("container stopped", ("app", "db:export"), "not running", env_extra="DB_CONTAINER={stopped}\n"),
        Case("engine socket absent", ("app", "db:export"), "cannot reach the Docker engine",
             process_env={"DOCKER_HOST": "unix:///nonexistent.sock"}),
        Case("wrong password", ("app", "db:export"), "password authentication failed",
             env_extra="DB_PASSWORD=not-the-password\n"),
        Case("wrong user", ("app", "db:export"), "password authentication failed", env_extra="DB_USER=nobody\n"),
        # --- command arguments
        Case("db:cleanup --keep 0", ("app", "db:cleanup", "--keep", "0"), "at least 1", 2),
        Case("db:export --format zip", ("app", "db:export", "--format", "zip"), "--format", 2),
        Case("db:rollback without a previous database", ("app", "db:rollback"), "no previous database"),
        # --- issue 16: hostile input, round two
        Case(".env: DB_PASSWORD's quote never closed", ("app", "db:export"), "cannot parse the value of DB_PASSWORD",
             2, env_extra=f'DB_PASSWORD="{prefix}s3cr3t-value\n', forbid_text=f"{prefix}s3cr3t"),
        Case("manifest not UTF-8 (import)", ("app", "db:import", DUMP), "not UTF-8", setup=_bad_manifest),
        Case("manifest not UTF-8 (drill)", ("app", "db:drill"), "not UTF-8", setup=_bad_manifest),
        Case("dump is a FIFO (import)", ("app", "db:import", DUMP), "not a regular file", setup=_fifo_dump,
             max_seconds=20),
        Case("dump is a FIFO (import --dry-run)", ("app", "db:import", "--dry-run", DUMP), "not a regular file",
             setup=_fifo_dump, max_seconds=20),
        Case("newest dump symlinked outside the stack", ("app", "db:import"), "outside the stack",
             setup=_newest_dump_symlinked_out),
        Case("SQL hook with a Latin-1 byte (pre_swap)", ("app", "db:import", DUMP), "not UTF-8", 2,
             setup=_latin1_sql_hook),
        Case("hooks.sh ends with exit 0 (pre_swap guard)", ("app", "db:import", DUMP), "did not run",
             hooks=_hook("return 1", "pre_swap") + "exit 0\n", setup=_copy(DUMP)),
        Case("HTTP hook URL with a port that is no number", ("app", "db:export"), "not a valid URL", 2,
             env_extra="KOMPOSE_HOOK_PRE_DB_EXPORT_HTTP=GET http://127.0.0.1:abc/\n"),
        Case("schedule that never fires (30 Feb)", ("status",), "never fires", 2,
             env_extra='KOMPOSE_SCHEDULE_DB_EXPORT="0 0 30 2 *"\n'),
        Case("--lock-timeout nan", ("--lock-timeout", "nan", "app", "db:export"), "--lock-timeout", 2),
        Case("--lock-timeout -1", ("--lock-timeout", "-1", "app", "db:export"), "--lock-timeout", 2),
    ]


def prepare(lab: Lab, workdir: Path) -> Fixtures:
    """The shared databases, reference dumps and a stopped container."""
    server = lab.server
    world.seed(server, LIVE, 500, "live")
    world.seed(server, OTHER, 50, "other")
    refs = workdir / "refs"
    refs.mkdir(parents=True, exist_ok=True)
    plain = world.make_dump(server, LIVE, refs / "live.sql")
    custom = world.make_dump(server, LIVE, refs / "live.dump", "custom")
    other_custom = world.make_dump(server, OTHER, refs / "other.dump", "custom")
    stopped = lab.client.containers.create("kompose/app:latest", ["sleep", "1"], name=f"{lab.prefix}stopped",
                                           labels={TEST_LABEL: lab.prefix})
    return Fixtures(lab, workdir, plain, custom, other_custom, stopped.name)


def run_case(fx: Fixtures, case: Case) -> Row:
    """Build the case's root, run kompose, check exit code, error line, time and that nothing changed."""
    lab = fx.lab
    base = fx.workdir / "cases" / re.sub(r"[^a-z0-9]+", "-", case.name.lower()).strip("-")
    if base.exists():
        shutil.rmtree(base)
    root = base / "root"
    env_text = case.env if case.env is not None else (
        f"DB_CONTAINER={lab.server.container.name}\nDB_NAME={LIVE}\nDB_USER={lab.server.user}\n"
        f"DB_PASSWORD={lab.password}\n" + case.env_extra.replace("{stopped}", fx.stopped_container)
    )
    if isinstance(env_text, str):
        env_text = env_text.encode("utf-8", "surrogateescape")
    spec: dict[str, str | bytes] = {".env": case.root_env if case.root_env is not None else "NETWORK_NAME=x\n",
                                    "app/compose.yaml": world.COMPOSE, "app/.env": env_text}
    if case.hooks is not None:
        spec["app/hooks.sh"] = case.hooks
    build_tree(root, spec)
    stack = root / "app"
    if case.setup:
        case.setup(fx, root, stack)
    args = [a.replace("{outside}", str(root.parent / DUMP)) for a in case.args]

    files_before = world.tree_state(base)
    dbs_before, live_before = world.snapshot(lab.server, LIVE)
    started = time.monotonic()
    if args[0] == "--root":
        result = run_kompose(*args, root=None, env=case.process_env, timeout=120)
    else:
        result = run_kompose(*args, root=root, env=case.process_env, timeout=120)
    elapsed = time.monotonic() - started
    time.sleep(0)  # (nothing runs in the background: checks can start at once)

    lines = result.output.splitlines()
    errors = [line for line in lines if ERROR_LINE.match(line)]
    problems = []
    if result.code != case.code:
        problems.append(f"exit {result.code}, expected {case.code}")
    if len(errors) != 1:
        problems.append(f"{len(errors)} error lines")
    elif case.expect.lower() not in errors[0].lower():
        problems.append(f"error line lacks {case.expect!r}")
    if "Traceback" in result.output:
        problems.append("a traceback")
    if elapsed > case.max_seconds:
        problems.append(f"took {elapsed:.1f}s")
    files_after = world.tree_state(base)
    if files_after != files_before:
        changed = sorted(set(files_before.items()) ^ set(files_after.items()))
        problems.append(f"files changed: {', '.join(sorted({name for name, _ in changed}))[:80]}")
    dbs_after, live_after = world.snapshot(lab.server, LIVE)
    if dbs_after != dbs_before:
        problems.append(f"databases changed: {dbs_before} -> {dbs_after}")
    if live_after != live_before:
        problems.append("live database changed")
    if case.forbid:
        forbidden = Path(case.forbid)
        places = [forbidden] if forbidden.is_absolute() else [Path.cwd() / forbidden, root / forbidden,
                                                              stack / forbidden]
        for place in places:
            if place.exists():
                problems.append(f"{place} was created")
                place.unlink()
    shown = errors[0].strip() if len(errors) == 1 else (errors or lines or [""])[-1].strip()
    shown = shown.replace(str(base.parent.parent), "…")  # the temporary directory says nothing
    observed = f"exit {result.code}: {shown}"
    if problems:
        observed += "  [" + "; ".join(problems) + "]"
    if case.forbid_text and case.forbid_text in result.output:
        problems.append("the secret value was shown")
        observed += "  [the secret value was shown]"
    if case.marker:
        world.kill_marked(case.marker)
    return Row(case.name, f"exit {case.code}, one error line: …{case.expect}…", observed, not problems, "bad input")
