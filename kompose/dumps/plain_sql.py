"""Reading a plain dump as psql will: what it restores, and what it must never do.

A plain dump is a psql script, so whatever is in it runs: ``pg_dump --clean --create``
writes ``DROP DATABASE`` / ``CREATE DATABASE`` / ``\\connect`` (it would leave the
temporary database and restore into, or drop, the live one), and a hostile file can run
shell commands through psql (``\\!``, ``\\o |``, ``\\copy … program``). ``Scanner``
follows psql's lexer far enough to see every statement start and every meta-command
outside quotes, comments and COPY data, streaming (memory stays flat: one line and one
statement's first words), and

- neutralises what ``pg_dump --create`` writes about the database object itself
  (DROP/CREATE/ALTER DATABASE, COMMENT/GRANT/REVOKE/SECURITY LABEL ON DATABASE,
  ALTER ROLE … IN DATABASE, UPDATE pg_catalog.pg_database, ``\\connect`` to the dump's
  own database): each becomes a comment line, so the restore stays in the database
  psql was started in; the swap carries the live database's own properties;
- refuses every other meta-command but ``\\restrict``/``\\unrestrict`` (pg_dump 15.14+),
  ``\\connect`` to a second database (pg_dumpall output), ``COPY … PROGRAM`` and
  ``SET standard_conforming_strings = off`` (psql's lexer would then read strings
  differently from this one): ``Refused``;
- counts the rows of every COPY block (``rows``): what the dump holds, for the manifest
  and for the check after a restore.

A line with more than LINE_LIMIT bytes outside COPY data is refused too (memory stays flat).
"""

from __future__ import annotations

import re

from kompose.dumps.plain_verdicts import _WATCHED, _WORDS_KEPT, Refused, Scan, _classify, table_key  # noqa: F401

LINE_LIMIT = 256 << 20

_NORMAL = re.compile(
    rb"""(?P<ws>[ \t\r\n\f\v]+)
    |(?P<lc>--[^\n]*)
    |(?P<bc>/\*)
    |(?P<es>[eE]')
    |(?P<sq>')
    |(?P<dq>")
    |(?P<dol>\$(?:[A-Za-z\x80-\xff_][A-Za-z\x80-\xff_0-9]*)?\$)
    |(?P<meta>\\)
    |(?P<semi>;)
    |(?P<word>[A-Za-z\x80-\xff_][A-Za-z\x80-\xff_0-9$]*)
    |(?P<other>.)""",
    re.X | re.S,
)
# inside a statement already judged harmless only these matter: quotes, comments, ';', '\\'
_SPECIAL = re.compile(rb"""['";$\\]|/\*|--""")
_IDENT_CHAR = re.compile(rb"[A-Za-z\x80-\xff_0-9$]")
# whole lines that cannot change the lexer's state (no backslash anywhere, no dollar, no
# double quote, no comment): the common lines of a dump are judged by one regex each
_SAFE_BODY = rb"(?:[^'\"$\\/;\-\n]++|'(?:[^'\\\n]++|'')*+'|/(?!\*)|-(?!-))*+"
_SAFE_CONT = re.compile(_SAFE_BODY + rb"\n?\Z")
_SAFE_END = re.compile(_SAFE_BODY + rb";[ \t\r]*\n?\Z")
_SAFE_STMT = re.compile(rb"[ \t]*([A-Za-z_][A-Za-z_0-9]*)(?![A-Za-z_0-9$\x80-\xff])" + _SAFE_BODY
                        + rb";[ \t\r]*\n?\Z")
# between statements: a run of whole harmless one-line statements (INSERTs of --inserts dumps,
# SETs are watched), blank lines and line comments, passed on by one regex call
_SAFE_BLOCK = re.compile(
    rb"(?:[ \t]*(?!(?i:DROP|CREATE|ALTER|COMMENT|SECURITY|GRANT|REVOKE|UPDATE|COPY|SET)(?![A-Za-z0-9_$\x80-\xff]))"
    rb"[A-Za-z_][A-Za-z_0-9]*(?![A-Za-z_0-9$\x80-\xff])" + _SAFE_BODY + rb";[ \t\r]*\n"
    rb"|[ \t\r]*\n|--[^\n]*\n)++"
)
_SQ_END = re.compile(rb"(?:[^']|'')*'(?!')")
_ES_END = re.compile(rb"(?:[^'\\]|\\.|'')*'(?!')", re.S)
_DQ_END = re.compile(rb'(?:[^"]|"")*"(?!")')
_BC_TOKEN = re.compile(rb"/\*|\*/")
_META_NAME = re.compile(rb"\\([A-Za-z!?;.\\]*[A-Za-z!?.]?)")
_COPY_TARGET = re.compile(
    rb"""\s*COPY\s+((?:"(?:[^"]|"")*"|[A-Za-z\x80-\xff_][A-Za-z\x80-\xff_0-9$]*)"""
    rb"""(?:\s*\.\s*(?:"(?:[^"]|"")*"|[A-Za-z\x80-\xff_][A-Za-z\x80-\xff_0-9$]*))?)""",
    re.I,
)
_REPLACE_FROM = 64 << 10  # stretches of COPY data at least this long may be counted by replace
_LONG_ROW = 40  # bytes a row: from this length on, replace counts faster than count
_PROBES = 16  # backslashes looked at one by one before _find_dot_line hands over to bytes.find


def _find_dot_line(buf, start: int) -> int:
    """``buf.find(b"\\n\\\\.", start)``: where a line starting with ``\\.`` begins, less its newline.

    COPY data is mostly free of backslashes (pg_dump escapes one as ``\\\\`` and writes NULL as
    ``\\N``), and ``find`` of a single byte is memchr, many times faster than a search for three
    bytes: the backslashes are looked at one by one, and after _PROBES of them that start no
    ``\\.`` line (a table full of NULLs or escapes) the rest of the block goes to ``find``.
    """
    probe = buf.find(b"\\", start + 1)
    for _ in range(_PROBES):
        if probe < 0:
            return -1
        if buf[probe - 1] == 10 and buf[probe + 1:probe + 2] == b".":
            return probe - 1
        probe = buf.find(b"\\", probe + 1)
    return -1 if probe < 0 else buf.find(b"\n\\.", probe - 1)


class Scanner:
    """Feed a plain dump's bytes in any chunks; ``feed`` returns what psql may be given.

    ``rewrite`` False: only count (export), nothing is refused or neutralised, output is not
    built. After ``end()``, ``scan`` holds what was found. ``name`` is the dump's name for messages.
    """

    def __init__(self, name: str, rewrite: bool = True, known_settings: frozenset[str] | None = None,
                 no_owner: bool = False):
        self.name = name
        self.rewrite = rewrite
        # the server's parameter names: a SET of any other is left out (None: none is)
        self.known_settings = known_settings
        self.no_owner = no_owner  # ALTER … OWNER TO left out: the objects stay the restoring user's
        self.scan = Scan()
        self._carry = b""
        self._line_no = 0
        # lexer state outside COPY data: None (normal), "sq", "es", "dq", ("dol", tag), ("bc", depth)
        self._state: object = None
        self._words: list[bytes] = []  # upper-cased words of the statement being read
        self._stmt_text = b""  # the statement's text so far (kept while it is being decided)
        self._deciding = False  # the statement's output is held until it is known to be harmless
        self._held: list[bytes] = []
        self._drop_statement = False  # the statement is neutralised: its text is not passed on
        self._copy: str | None = None  # the table whose COPY data follows
        self._copy_pending: str | None = None  # a COPY … FROM stdin whose ';' was seen on this line
        self._long_rows = False  # the COPY data read last had long rows (_newlines)
        self.disabled = False  # not a plain dump (a custom archive, gzip bytes): counting stops

    # ------------------------------------------------------------ streaming

    def feed(self, data: bytes) -> bytes:
        return b"".join(self.feed_pieces(data))

    def feed_pieces(self, data: bytes) -> list:
        """``feed``'s output as pieces (bytes, or memoryviews of ``data``: COPY data is passed on
        without a copy), for a consumer that writes them one by one."""
        if self.disabled:
            return [data]
        if not isinstance(data, (bytes, bytearray)):
            # a memoryview: copied once. A bytearray (the pipe copier's block, the guard's buffers)
            # is read in place; COPY data is passed on as views of it, valid until its owner reuses it
            data = bytes(data)
        if not self._line_no and not self._carry and (data[:5] == b"PGDMP" or data[:2] == b"\x1f\x8b"):
            self.disabled = True
            return [data]
        out: list = []
        if self._carry:
            # the line the last chunk ended in is finished first, on its own: the rest of this
            # chunk is read in place (no copy of the whole chunk behind a few carried bytes)
            newline = data.find(b"\n")
            if newline < 0 or newline + 1 == len(data):
                buf, self._carry = self._carry + data, b""
                self._feed(buf, 0, out)
                return out
            head, self._carry = self._carry + data[:newline + 1], b""
            self._feed(head, 0, out)
            if self._carry:  # the head still ends inside something (a "\." line cut short): join up
                buf, self._carry = self._carry + data[newline + 1:], b""
                self._feed(buf, 0, out)
                return out
            self._feed(data, newline + 1, out)
            return out
        self._feed(data, 0, out)
        return out

    def _feed(self, buf: bytes, pos: int, out: list) -> None:
        """Lex ``buf`` from ``pos``; what psql may be given goes onto ``out`` (only when rewriting)."""
        size = len(buf)
        while pos < size:
            if self._copy is not None:
                pos = self._copy_data(buf, pos, out)
                if pos < 0:
                    break
                continue
            if self._state is None and not self._words and not self._deciding and self._copy_pending is None:
                block = _SAFE_BLOCK.match(buf, pos)
                if block is not None:
                    self._line_no += buf.count(b"\n", pos, block.end())
                    if self.rewrite:
                        out.append(memoryview(buf)[pos:block.end()])
                    pos = block.end()
                    continue
            newline = buf.find(b"\n", pos)
            if newline < 0:
                self._carry = bytes(buf[pos:])
                if len(self._carry) > LINE_LIMIT:
                    raise Refused(f"{self.name} has a line over {LINE_LIMIT >> 20} MiB outside COPY data: "
                                  "not a pg_dump file kompose restores")
                break
            self._line_no += 1
            line = buf[pos:newline + 1]
            produced = self._sql_line(line if type(line) is bytes else bytes(line))
            if self.rewrite and produced:
                out.append(produced)
            pos = newline + 1

    def end(self) -> bytes:
        """The rest (a last line without a newline). Raises Refused for an unfinished COPY block."""
        tail = b""
        if self._carry and not self.disabled:
            rest, self._carry = self._carry, b""
            if self._copy is not None:
                line = rest.rstrip(b"\r")
                if line != b"\\.":
                    self.scan.rows[self._copy] = self.scan.rows.get(self._copy, 0) + 1
                self._copy = None
                tail = rest
            else:
                self._line_no += 1
                tail = self._sql_line(rest)
        if self._deciding:
            tail += self._decide(ended=True)
        return tail if self.rewrite else b""

    def _copy_data(self, buf: bytes, pos: int, out: list[bytes]) -> int:
        """Pass COPY data on, counting its lines, up to and including the ``\\.`` line.
        Returns the position after it, or -1 when the buffer ended inside the data."""
        table = self._copy
        end = -1
        if buf.startswith((b"\\.\n", b"\\.\r\n"), pos):
            end = pos
        else:
            found = _find_dot_line(buf, pos)
            while found >= 0:
                after = buf[found + 3: found + 5]
                if after[:1] == b"\n" or after == b"\r\n":
                    end = found + 1
                    break
                if len(after) < 2 and found + 3 + len(after) >= len(buf):
                    break  # the line may go on in the next chunk
                found = _find_dot_line(buf, found + 1)
        if end < 0:
            last = buf.rfind(b"\n", pos)
            if last < 0 or (found >= 0 and last < found + 1):
                cut = found + 1 if found >= 0 else pos
                lines = self._newlines(buf, pos, cut)
                self.scan.rows[table] = self.scan.rows.get(table, 0) + lines
                if self.rewrite:
                    out.append(buf[pos:cut])
                self._carry = bytes(buf[cut:])
                return -1
            lines = self._newlines(buf, pos, last + 1)
            self.scan.rows[table] = self.scan.rows.get(table, 0) + lines
            self._line_no += lines
            if self.rewrite:
                out.append(memoryview(buf)[pos:last + 1])
            self._carry = bytes(buf[last + 1:])
            return -1
        lines = self._newlines(buf, pos, end)
        self.scan.rows[table] = self.scan.rows.get(table, 0) + lines
        stop = buf.index(b"\n", end) + 1
        self._line_no += lines + 1
        if self.rewrite:
            out.append(memoryview(buf)[pos:stop])
        self._copy = None
        return stop

    def _newlines(self, buf, start: int, end: int) -> int:
        """``buf.count(b"\\n", start, end)``, the rows of a stretch of COPY data.

        ``count`` of one byte looks at every byte in turn (≈ 2 GB/s here); ``replace`` of the
        newlines by nothing finds them with memchr, ≈ 2.5 × faster when rows are long (pgbench's
        are 97 bytes) but slower when they are short (≈ 10 ns a row): the stretch before says which.
        ``replace`` goes over the whole buffer (a slice would copy it), what lies outside
        [start, end) is counted and taken off.
        """
        size = end - start
        if size < _REPLACE_FROM or not self._long_rows or size < len(buf) - size:
            count = buf.count(b"\n", start, end)
        else:
            count = len(buf) - len(buf.replace(b"\n", b""))
            if start:
                count -= buf.count(b"\n", 0, start)
            if end < len(buf):
                count -= buf.count(b"\n", end)
        if size >= _REPLACE_FROM:
            self._long_rows = size >= _LONG_ROW * count
        return count

    # ------------------------------------------------------------ SQL lines

    def _refuse(self, what: str) -> None:
        raise Refused(f"{self.name} line {self._line_no}: {what}; kompose does not restore it "
                      "(a pg_dump file never holds this)")

    def _emit(self, piece: bytes, out: list[bytes]) -> None:
        if not piece:
            return
        if self._deciding:
            self._held.append(piece)
            self._stmt_text += piece if len(self._stmt_text) < 4096 else b""
        elif not self._drop_statement:
            out.append(piece)

    def _sql_line(self, line: bytes) -> bytes:
        if self._state is None and self._copy_pending is None:
            if self._words and not self._deciding:  # a statement judged already goes on
                if _SAFE_CONT.match(line):
                    return b"" if self._drop_statement else line
                if _SAFE_END.match(line):
                    dropped = self._drop_statement
                    self._end_statement()
                    return b"" if dropped else line
            elif not self._words and not self._deciding:
                match = _SAFE_STMT.match(line)
                if match and match.group(1).upper() not in _WATCHED:
                    return line  # one whole harmless statement
        out: list[bytes] = []
        pos = 0
        size = len(line)
        while pos < size:
            state = self._state
            if state is not None:
                pos = self._in_quote(line, pos, out)
                continue
            if self._words and not self._deciding and self._copy_pending is None:
                # the fast path: skip to the next character that can change the lexer's state
                special = _SPECIAL.search(line, pos)
                if special is None:
                    self._emit(line[pos:], out)
                    break
                start = special.start()
                if start > pos:
                    self._emit(line[pos:start], out)
                    pos = start
                char = line[pos:pos + 1]
                if char == b"$" and pos and _IDENT_CHAR.match(line, pos - 1):
                    self._emit(char, out)  # inside an identifier (a$b), not a dollar quote
                    pos += 1
                    continue
                if char == b"'" and pos and line[pos - 1:pos] in (b"e", b"E") and \
                        not (pos > 1 and _IDENT_CHAR.match(line, pos - 2)):
                    self._state = "es"  # E'...': the E was passed on already
                    self._emit(char, out)
                    pos += 1
                    continue
            match = _NORMAL.match(line, pos)
            kind = match.lastgroup
            token = match.group(0)
            end = match.end()
            if kind == "ws" or kind == "other":
                if kind == "other" and self._copy_pending is not None:
                    self._refuse("text after a COPY … FROM stdin statement on its line")
                if kind == "other" and not self._words and not self._deciding and not self._drop_statement:
                    self._start_statement(b"")
                self._emit(token, out)
            elif kind == "lc":
                self._emit(token, out)
            elif kind == "bc":
                self._state = ("bc", 1)
                self._emit(token, out)
            elif kind in ("es", "sq", "dq"):
                self._note_word(b"'" if kind != "dq" else b'"')
                self._state = kind
                self._emit(token, out)
            elif kind == "dol":
                self._note_word(b"$")
                self._state = ("dol", token)
                self._emit(token, out)
            elif kind == "semi":
                self._emit(token, out)
                out.append(self._decide(ended=True))
                self._end_statement()
            elif kind == "word":
                if self._copy_pending is not None:
                    self._refuse("text after a COPY … FROM stdin statement on its line")
                self._note_word(token.upper())
                self._emit(token, out)
                if self._deciding:
                    out.append(self._decide(ended=False))
            elif kind == "meta":
                pos = self._meta(line, pos, out)
                continue
            pos = end
        if self._copy_pending is not None:
            self._copy, self._copy_pending = self._copy_pending, None
            self.scan.rows.setdefault(self._copy, 0)
        return b"".join(out)

    def _in_quote(self, line: bytes, pos: int, out: list[bytes]) -> int:
        state = self._state
        if state == "sq" or state == "es" or state == "dq":
            pattern = {"sq": _SQ_END, "es": _ES_END, "dq": _DQ_END}[state]
            match = pattern.match(line, pos)
            # a doubled quote split across lines cannot happen: the newline sits between them
            if match is None:
                self._emit(line[pos:], out)
                return len(line)
            self._state = None
            self._emit(line[pos:match.end()], out)
            return match.end()
        if state[0] == "dol":
            found = line.find(state[1], pos)
            if found < 0:
                self._emit(line[pos:], out)
                return len(line)
            self._state = None
            self._emit(line[pos:found + len(state[1])], out)
            return found + len(state[1])
        depth = state[1]
        while True:
            match = _BC_TOKEN.search(line, pos)
            if match is None:
                self._state = ("bc", depth)
                self._emit(line[pos:], out)
                return len(line)
            depth += 1 if match.group(0) == b"/*" else -1
            self._emit(line[pos:match.end()], out)
            pos = match.end()
            if depth == 0:
                self._state = None
                return pos

    def _meta(self, line: bytes, pos: int, out: list[bytes]) -> int:
        """A psql meta-command: it runs to the end of the line."""
        name_match = _META_NAME.match(line, pos)
        name = name_match.group(1).decode("ascii", "replace") if name_match else ""
        rest = line[pos:]
        if name in ("restrict", "unrestrict"):
            # pg_dump 15.14+'s own restrict key: replaced by kompose's (PRELUDE), which the dump cannot know
            if self.rewrite:
                out.append(b"-- kompose: the dump's own restrict key line left out (kompose sets its own)\n")
            return len(line)
        if name in ("connect", "c"):
            target = rest[len(name) + 1:].strip().decode("utf-8", "replace")
            if self.scan.connects_to is not None and target != self.scan.connects_to:
                self._refuse(f"a second \\connect, to another database ({target[:60]})")
            self.scan.connects_to = target
            self.scan.neutralised.append("\\connect")
            if self.rewrite:
                out.append(b"-- kompose: a connect meta-command left out: the restore stays in the database "
                           b"it was started in\n")
            return len(line)
        if not self.rewrite:
            return len(line)
        shown = rest.split(b"\n")[0][:40].decode("utf-8", "replace").strip()
        self._refuse(f"psql meta-command {shown}")
        return len(line)

    # ------------------------------------------------------------ statements

    def _start_statement(self, first: bytes) -> None:
        self._deciding = True
        self._held = []
        self._stmt_text = b""

    def _note_word(self, word: bytes) -> None:
        if not self._words and not self._deciding and not self._drop_statement:
            self._start_statement(word)
        if len(self._words) < _WORDS_KEPT:
            self._words.append(word)

    def _end_statement(self) -> None:
        self._words = []
        self._deciding = False
        self._held = []
        self._stmt_text = b""
        self._drop_statement = False

    def _decide(self, ended: bool) -> bytes:
        """Classify the statement being read once its words tell; returns the held text to pass on."""
        if not self._deciding:
            return b""
        verdict = _classify(self._words, ended)
        if verdict == "ok" and self.rewrite and self._words[:1] in ([b"SET"], [b"ALTER"]):
            from kompose.dumps import compat

            if self.no_owner and self._words[0] == b"ALTER" and not ended:
                return b""  # OWNER TO comes at its end: hold it until then
            left_out = compat.left_out(self._stmt_text, self.known_settings, self.no_owner)
            if left_out is not None:
                kind, note = left_out
                if kind == "owner":
                    self.scan.owners_skipped += 1
                else:
                    self.scan.skipped_settings.append(kind)
                self._deciding = False
                self._held = []
                self._drop_statement = not ended
                return note
        if verdict is None:
            return b""
        self._deciding = False
        held, self._held = b"".join(self._held), []
        if verdict == "ok":
            return held
        if verdict == "copy":
            match = _COPY_TARGET.match(self._stmt_text)
            if match is None:
                self._refuse("a COPY … FROM stdin whose table kompose cannot read")
            self._copy_pending = table_key(match.group(1))
            return held
        if verdict.startswith("refuse:"):
            if not self.rewrite:
                return held  # only counting: what a restore would refuse is the guard's business
            self._refuse(verdict[len("refuse:"):])
        self.scan.neutralised.append(verdict)
        self._drop_statement = not ended
        return f"-- kompose: a {verdict} statement left out: the restore never changes a database object\n".encode()
