"""What the plain-dump guard decides about a statement (dumps/plain_sql.py reads the dump, this
judges what it read): the statements pg_dump --create writes about the database itself, which are
neutralised, and the ones refused; and what a scan found (rows per COPY block)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from kompose.errors import DumpError

_WORDS_KEPT = 24  # a statement's first words the scanner keeps to judge it
_IDENT_PART = re.compile(rb'"((?:[^"]|"")*)"|([A-Za-z\x80-\xff_][A-Za-z\x80-\xff_0-9$]*)')




class Refused(DumpError):
    """The dump holds something kompose never lets a restore run."""


@dataclass
class Scan:
    """What a plain dump holds, as far as a restore goes."""

    rows: dict[str, int] = field(default_factory=dict)  # "schema.table" (unquoted) -> rows in its COPY block
    neutralised: list[str] = field(default_factory=list)  # e.g. "DROP DATABASE", "\\connect"
    connects_to: str | None = None
    # ways through for dumps kompose.sh restored (dumps/compat.py): SET lines of parameters the
    # server does not know, and with no_owner the ALTER … OWNER TO statements, left out
    skipped_settings: list[str] = field(default_factory=list)
    owners_skipped: int = 0

    def tables(self) -> list[tuple[str, str]]:
        """(schema, table) of every COPY block."""
        return [tuple(key.split(".", 1)) if "." in key else ("public", key) for key in self.rows]  # type: ignore[misc]

    def summary(self) -> str:
        kinds: dict[str, int] = {}
        for item in self.neutralised:
            kinds[item] = kinds.get(item, 0) + 1
        return ", ".join(f"{count} × {kind}" for kind, count in kinds.items())


def table_key(target: bytes) -> str:
    """'schema.table' unquoted, as PostgreSQL stores the names, from a COPY target as written."""
    parts = []
    for match in _IDENT_PART.finditer(target):
        if match.group(1) is not None:
            parts.append(match.group(1).replace(b'""', b'"').decode("utf-8", "replace"))
        else:
            parts.append(match.group(2).lower().decode("utf-8", "replace"))
    return ".".join(parts)


_WATCHED = {b"DROP", b"CREATE", b"ALTER", b"COMMENT", b"SECURITY", b"GRANT", b"REVOKE", b"UPDATE", b"COPY", b"SET"}


def _classify(words: list[bytes], ended: bool) -> str | None:
    """"ok", "copy", a neutralised kind ("DROP DATABASE", …), "refuse:<why>", or None (read on)."""
    if not words:
        return "ok" if ended else None
    first = words[0]
    if first not in _WATCHED:
        return "ok"
    known = len(words)
    if first in (b"DROP", b"CREATE", b"ALTER"):
        if known < 2:
            return "ok" if ended else None
        if words[1] == b"DATABASE":
            return f"{first.decode()} DATABASE"
        if first == b"ALTER" and words[1] in (b"ROLE", b"USER"):
            for index in range(2, known - 1):
                if words[index] == b"IN" and words[index + 1] == b"DATABASE":
                    return "ALTER ROLE … IN DATABASE"
            return "ok" if ended or known >= _WORDS_KEPT else None
        return "ok"
    if first in (b"COMMENT", b"SECURITY", b"GRANT", b"REVOKE"):
        for index in range(1, known - 1):
            if words[index] == b"ON":
                return f"{first.decode()} ON DATABASE" if words[index + 1] == b"DATABASE" else "ok"
        return "ok" if ended or known >= _WORDS_KEPT else None
    if first == b"UPDATE":
        if known < 3 and not ended:
            return None
        return "UPDATE pg_database" if b"PG_DATABASE" in words[1:4] else "ok"
    if first == b"SET":
        if known < 3 and not ended:
            return None
        if b"STANDARD_CONFORMING_STRINGS" in words[1:3]:
            if not ended:
                return None
            return "ok" if words[-1] == b"ON" else "refuse:SET standard_conforming_strings to anything but on"
        return "ok"
    # COPY: decided at its end
    if not ended:
        return None
    if b"PROGRAM" in words:
        return "refuse:COPY … PROGRAM (a shell command on the server)"
    for index in range(1, known - 1):
        if words[index] == b"FROM" and words[index + 1] == b"STDIN":
            return "copy"
    return "ok"


def psql_has_restrict(version_text: str) -> bool:
    """Whether ``psql --version``'s psql knows \\restrict (13.22, 14.19, 15.14, 16.10, 17.6 and later)."""
    match = re.search(r"(\d+)\.(\d+)", version_text)
    if not match:
        return False
    major, minor = int(match.group(1)), int(match.group(2))
    first = {13: 22, 14: 19, 15: 14, 16: 10, 17: 6}
    return major > 17 or (major in first and minor >= first[major])
