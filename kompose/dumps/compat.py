"""Ways through for plain dumps kompose.sh restored and a plain restore would refuse.

- ``left_out`` is asked by dumps.plain_sql's guard (which follows psql's lexer) about each
  top-level SET and ALTER statement: a ``SET`` of a parameter this server does not know
  (``SET transaction_timeout = 0;`` from pg_dump 17 into PostgreSQL 15) becomes a comment line,
  named in a warning; with ``no_owner`` (``db:import --no-owner``) so does ``ALTER … OWNER TO``,
  and the objects stay owned by the role that runs the restore (DB_USER), as ``pg_restore
  --no-owner`` does for custom archives.
- ``needs()`` reads a whole plain dump for what it needs of the server: the roles it names
  (owners, grantees, SET ROLE / SESSION AUTHORIZATION), the extensions it creates and the
  session parameters it sets, so ``--in-place`` can refuse before it drops anything. Its lexer
  follows quotes (``'…'``, ``E'…'``, ``"…"``, ``$tag$…$tag$``), comments and COPY data, line by
  line; memory holds one line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_SET = re.compile(rb"^SET\s+(?:SESSION\s+|LOCAL\s+)?([A-Za-z_][A-Za-z0-9_.$]*)\s*(?:=|\s+TO\s)", re.I)
_SET_CONFIG = re.compile(rb"^SELECT\s+pg_catalog\.set_config\(", re.I)
_IDENT = rb'(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)'
_OWNER = re.compile(rb"^ALTER\s[^;]*?\sOWNER\s+TO\s+(" + _IDENT + rb")\s*;\s*$", re.I)
_GRANT_TO = re.compile(rb"^(?:GRANT\s[^;]*?\sTO|REVOKE\s[^;]*?\sFROM)\s+(" + _IDENT + rb"(?:\s*,\s*" + _IDENT + rb")*)", re.I)
_ROLE_SET = re.compile(rb"^SET\s+(?:SESSION\s+AUTHORIZATION|ROLE)\s+('(?:[^']|'')*'|" + _IDENT + rb")", re.I)
_EXTENSION = re.compile(rb"^CREATE\s+EXTENSION\s+(?:IF\s+NOT\s+EXISTS\s+)?(" + _IDENT + rb")", re.I)
_COPY_FROM_STDIN = re.compile(rb"^COPY\s.*\sFROM\s+stdin\s*;\s*$", re.I | re.S)
_TOKEN = re.compile(rb"--|/\*|\*/|[eE]'|'|\"|\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$|;")
_ES_END = re.compile(rb"(?:[^'\\]|\\.|'')*'", re.S)
# roles every server has, whatever the dump names
_BUILTIN_ROLES = {"public", "current_user", "session_user", "current_role"}


def _name(raw: bytes) -> str:
    if raw.startswith(b'"'):
        return raw[1:-1].replace(b'""', b'"').decode("utf-8", "replace")
    if raw.startswith(b"'"):
        return raw[1:-1].replace(b"''", b"'").decode("utf-8", "replace")
    return raw.decode("utf-8", "replace").lower()


@dataclass
class Needs:
    """What a plain dump needs of the server it is restored into."""

    roles: set[str] = field(default_factory=set)  # owners and grantees
    owners: set[str] = field(default_factory=set)
    grantees: set[str] = field(default_factory=set)  # roles named by GRANT / REVOKE / SET ROLE
    extensions: set[str] = field(default_factory=set)
    settings: set[str] = field(default_factory=set)  # session parameters of its SET lines


class _Lexer:
    """Where each line of a plain dump starts: a new top-level statement, inside one, in COPY data."""

    def __init__(self) -> None:
        self.state: object = None  # None, "sq", "es", "dq", ("dol", tag), ("bc", depth)
        self.in_statement = False
        self.in_copy = False

    def line(self, line: bytes) -> bool:
        """Advance over ``line``; True when it begins a top-level statement (or is COPY data: see in_copy)."""
        if self.in_copy:
            if line.rstrip(b"\r\n") == b"\\.":
                self.in_copy = False
            return False
        starts = self.state is None and not self.in_statement and bool(line.strip()) \
            and not line.lstrip().startswith(b"--")
        if starts:
            self.in_statement = True
        self._advance(line)
        if starts and self.state is None and not self.in_statement and _COPY_FROM_STDIN.match(line.strip()):
            self.in_copy = True
        return starts

    def _advance(self, line: bytes) -> None:
        pos = 0
        size = len(line)
        while pos < size:
            state = self.state
            if state == "es":
                match = _ES_END.match(line, pos)
                if match is None:
                    return
                self.state = None
                pos = match.end()
                continue
            match = _TOKEN.search(line, pos)
            if match is None:
                return
            token = match.group(0)
            pos = match.end()
            if state is None:
                if token == b"--":
                    return
                if token == b"/*":
                    self.state = ("bc", 1)
                elif token == b";":
                    rest = line[pos:].strip()
                    self.in_statement = bool(rest) and not rest.startswith(b"--")
                elif token in (b"'", b'"'):
                    self.state = "sq" if token == b"'" else "dq"
                elif token[:1] in b"eE" and len(token) == 2:
                    before = line[match.start() - 1:match.start()] if match.start() else b" "
                    self.state = "sq" if (before.isalnum() or before == b"_") else "es"
                elif token.startswith(b"$"):
                    self.state = ("dol", token)
            elif state in ("sq", "dq"):
                if (state == "sq" and token.endswith(b"'")) or (state == "dq" and token == b'"'):
                    self.state = None
            elif state[0] == "dol":
                if token == state[1]:
                    self.state = None
            elif token in (b"/*", b"*/"):
                depth = state[1] + (1 if token == b"/*" else -1)
                self.state = ("bc", depth) if depth else None


_NOT_PARAMETERS = {"role", "session", "local", "transaction", "constraints", "time", "names", "schema"}


def left_out(statement: bytes, known_settings: frozenset[str] | None, no_owner: bool) -> tuple[str, bytes] | None:
    """For dumps.plain_sql's guard: whether a top-level ``SET …`` or ``ALTER …`` statement (its text
    so far) is left out of the restore, as (the parameter's name or "owner", the comment line
    psql gets instead); None when it restores as it is."""
    text = statement.strip()
    if no_owner and _OWNER.match(text):
        return "owner", b"-- kompose: ALTER ... OWNER TO left out (--no-owner: the object stays DB_USER's)\n"
    if known_settings is None:
        return None
    match = _SET.match(text)
    if not match:
        return None
    name = match.group(1).decode("ascii", "replace").lower()
    if "." in name or name in _NOT_PARAMETERS or name in known_settings:  # a dotted name: any server takes it
        return None
    return name, f"-- kompose: SET {name} left out: this server does not know the parameter\n".encode()


def needs(stream, chunk: int = 1 << 20) -> Needs:
    """What the plain dump read from ``stream`` (read(size) -> bytes) needs of the server."""
    found = Needs()
    lexer = _Lexer()
    carry = b""
    while True:
        data = stream.read(chunk)
        if not data:
            lines = [carry] if carry else []
        else:
            data = carry + data
            cut = data.rfind(b"\n") + 1
            carry = data[cut:]
            lines = data[:cut].splitlines(keepends=True)
        for line in lines:
            if not lexer.line(line):
                continue
            text = line.strip()
            if match := _OWNER.match(text):
                role = _name(match.group(1))
                found.owners.add(role)
                found.roles.add(role)
            elif match := _GRANT_TO.match(text):
                for raw in re.findall(_IDENT, match.group(1)):
                    found.grantees.add(_name(raw))
            elif match := _ROLE_SET.match(text):
                found.grantees.add(_name(match.group(1)))
            elif match := _EXTENSION.match(text):
                found.extensions.add(_name(match.group(1)))
            elif match := _SET.match(text):
                found.settings.add(match.group(1).decode("ascii", "replace").lower())
        if not data:
            break
    found.roles |= found.grantees
    for names in (found.roles, found.owners, found.grantees):
        names -= _BUILTIN_ROLES
    return found
