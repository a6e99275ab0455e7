"""Checking a dump's structure: a plain dump's header and end marker, a custom archive's table of contents.

Pure functions over bytes and files; the custom check needs pg_restore, which the runner
executes inside the database container and hands the output to ``parse_listing``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from kompose.dumps import codecs
from kompose.dumps import files as dumps
from kompose.errors import DumpError, last_lines
from kompose.dumps.files import plain_ending_problem
from kompose.engines.mariadb import sql as mariadb

MARIADB_METHOD = "plain: mariadb-dump / mysqldump header and '-- Dump completed' marker"
_MARIADB_BANNER = re.compile(rb"^-- (MariaDB|MySQL) dump \S+\s+Distrib (\S+?),", re.MULTILINE)
_MARIADB_SERVER = re.compile(rb"^-- Server version\s+(\S[^\r\n]*)$", re.MULTILINE)

HEAD_BYTES = 8192
TAIL_BYTES = 4096
PLAIN_METHOD = "plain: pg_dump header and end-of-dump marker"
LIST_METHOD = "custom: pg_restore --list reads the archive's table of contents"
FULL_METHOD = "custom: pg_restore reads every entry of the archive"

_DUMPED_FROM = re.compile(rb"^-- Dumped from database version (\S[^\r\n]*)$", re.MULTILINE)
_DUMPED_BY = re.compile(rb"^-- Dumped by pg_dump version (\S[^\r\n]*)$", re.MULTILINE)
_LIST_FROM = re.compile(r"^;\s+Dumped from database version:\s*(\S.*)$", re.MULTILINE)
_LIST_BY = re.compile(r"^;\s+Dumped by pg_dump version:\s*(\S.*)$", re.MULTILINE)


@dataclass(frozen=True)
class Structure:
    """The result of a structure check; versions as the dump states them."""

    ok: bool
    method: str
    detail: str
    server_version: str | None = None
    pg_dump_version: str | None = None


def parse_plain_header(head: bytes) -> tuple[str | None, str | None]:
    """(server version, pg_dump version) from a plain dump's first lines."""
    server = _DUMPED_FROM.search(head)
    tool = _DUMPED_BY.search(head)
    return (
        server.group(1).decode("utf-8", "replace").strip() if server else None,
        tool.group(1).decode("utf-8", "replace").strip() if tool else None,
    )


def plain_ends(path: Path, compression: str = "", on_progress=None) -> tuple[bytes, bytes]:
    """(first HEAD_BYTES, last TAIL_BYTES) of a plain dump's content (see dumps.plain_ends)."""
    return dumps.plain_ends(path, compression, HEAD_BYTES, TAIL_BYTES, on_progress=on_progress)


def check_plain(path: Path, compression: str = "", on_progress=None) -> Structure:
    """Header (pg_dump's banner and versions) and pg_dump's closing line. Never raises.
    ``on_progress``: told the bytes read of a compressed dump, which is decompressed to its end."""
    try:
        head, tail = plain_ends(path, compression, on_progress)
    except DumpError as exc:
        return Structure(False, PLAIN_METHOD, exc.message)
    return check_plain_ends(head, tail)


def check_plain_ends(head: bytes, tail: bytes) -> Structure:
    """check_plain of a dump's first and last bytes (a stream kept them: KOMPOSE_LOCAL_DUMPS=no)."""
    if mariadb.is_dump(head):
        return _check_mariadb(head, tail)
    server, tool = parse_plain_header(head)
    problems = []
    if not head.lstrip().startswith(b"--") or b"-- PostgreSQL database dump" not in head:
        problems.append("no pg_dump header")
    elif tool is None:
        problems.append("no pg_dump version in the header")
    ending = plain_ending_problem(head, tail)
    if ending:
        problems.append(f"{ending} (truncated?)")
    if problems:
        return Structure(False, PLAIN_METHOD, "; ".join(problems), server, tool)
    return Structure(True, PLAIN_METHOD, f"pg_dump {tool.split()[0]} header and end-of-dump marker present", server, tool)


def _check_mariadb(head: bytes, tail: bytes) -> Structure:
    """Header (the dump tool's banner) and its closing '-- Dump completed' line."""
    banner = _MARIADB_BANNER.search(head)
    server = _MARIADB_SERVER.search(head)
    server_version = server.group(1).decode("utf-8", "replace").strip() if server else None
    tool = banner.group(2).decode("utf-8", "replace") if banner else None
    problems = [] if banner else ["no mariadb-dump / mysqldump header"]
    ending = mariadb.ending_problem(tail)
    if ending:
        problems.append(f"{ending} (truncated?)")
    if problems:
        return Structure(False, MARIADB_METHOD, "; ".join(problems), server_version, tool)
    name = banner.group(1).decode()
    return Structure(True, MARIADB_METHOD, f"{name} dump {tool} header and end-of-dump marker present",
                     server_version, tool)


def parse_listing(exit_code: int, stdout: bytes, stderr: bytes, method: str = LIST_METHOD) -> Structure:
    """Judge ``pg_restore --list`` (or a full read) of a custom archive from its exit code and output."""
    text = stdout.decode("utf-8", "replace")
    server = _LIST_FROM.search(text)
    tool = _LIST_BY.search(text)
    versions = (server.group(1).strip() if server else None, tool.group(1).strip() if tool else None)
    if exit_code != 0:
        return Structure(False, method, f"pg_restore failed (exit {exit_code}): {last_lines(stderr, 2, 'no output')}",
                         *versions)
    if method == LIST_METHOD and "Format: CUSTOM" not in text:
        return Structure(False, method, "pg_restore --list printed no archive header", *versions)
    entries = sum(1 for line in text.splitlines() if line and not line.startswith(";"))
    detail = (f"pg_restore --list read {entries} entries" if method == LIST_METHOD
              else "pg_restore read every entry of the archive")
    return Structure(True, method, detail, *versions)


def version_number(version: str | None) -> int | None:
    """PostgreSQL's server_version_num-style major number: '15.18 (Debian…)' -> 150000,
    '9.6.24' -> 90600. None when unparsable."""
    if not version:
        return None
    match = re.match(r"\s*(\d+)(?:\.(\d+))?", version)
    if not match:
        return None
    first = int(match.group(1))
    if first >= 10:
        return first * 10000
    return first * 10000 + int(match.group(2) or 0) * 100


def major_text(number: int) -> str:
    return str(number // 10000) if number >= 100000 else f"{number // 10000}.{(number % 10000) // 100}"


def parse_custom_header(head: bytes) -> tuple[str | None, str | None] | None:
    """(server version, pg_dump version) from a custom archive's header, or None when it is
    not one kompose can read (archive format 1.10 or later: PostgreSQL 8.4+)."""
    header = dumps.custom_header(head)
    return None if header is None else (header[1], header[2])


def dump_versions(path: Path, fmt: str, compression: str = "") -> tuple[str | None, str | None]:
    """(server version, pg_dump version) a dump states in its first bytes; (None, None) when unknown."""
    try:
        if compression:
            head = codecs.head(path, compression, HEAD_BYTES)
        else:
            with open(path, "rb") as handle:
                head = handle.read(HEAD_BYTES)
    except (OSError, DumpError):
        return None, None
    if fmt == "custom":
        return parse_custom_header(head) or (None, None)
    return parse_plain_header(head)
