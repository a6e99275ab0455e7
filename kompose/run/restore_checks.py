"""How a stack run checks a restore: a plain dump streamed through the guard (dumps/plain_guard.py)
into psql, the rows it streamed against the manifest's, and what the restored database holds
(CheckRestored) before anything is swapped."""

from __future__ import annotations

import io
import threading
from pathlib import Path

from kompose.docker import exec as docker_exec
from kompose.dumps import files as dumps
from kompose.dumps import manifest, mariadb_rows, plain_guard
from kompose.errors import DumpError, KomposeError
from kompose.plan.steps import CheckChecksum, CheckRestored, Exec, Sql
from kompose.run.dump_steps import LIST_PREFIX


class _ScriptLater:
    """stdin of a psql session started before its script is known: read() waits until give()."""

    def __init__(self) -> None:
        self._ready = threading.Event()
        self._data = b""
        self._read = False

    def give(self, data: bytes) -> None:
        self._data = data
        self._ready.set()

    def read(self, size: int = -1) -> bytes:
        self._ready.wait()
        if self._read:
            return b""
        self._read = True
        return self._data


class RestoreChecks:
    """The restore-check handlers and helpers of StackRun (a mixin, as DumpSteps is)."""

    def _open_check_session(self, restore: Exec) -> None:
        """When the restore ``restore`` is followed (past its CheckChecksum) by a CheckRestored
        ``opened_early``: start that step's psql now (_open_session)."""
        steps = self.plan.steps
        try:
            at = next(i for i, candidate in enumerate(steps) if candidate is restore)
        except StopIteration:
            return
        following = [candidate for candidate in steps[at + 1:at + 3] if not isinstance(candidate, CheckChecksum)]
        if following and isinstance(following[0], CheckRestored) and following[0].opened_early:
            self._open_session(following[0])

    def _open_next_session(self, current) -> None:
        """When the step right after ``current`` is a script step (Sql) ``opened_early`` (the swap, with
        no hook between): start its psql now, while ``current`` runs (_open_session)."""
        steps = self.plan.steps
        at = next((i for i, candidate in enumerate(steps) if candidate is current), None)
        if at is None or at + 1 >= len(steps):
            return
        following = steps[at + 1]
        if isinstance(following, Sql) and getattr(following, "opened_early", False) and not following.background:
            self._open_session(following)

    def _open_session(self, step) -> None:
        """Start ``step``'s psql (its container, argv, env) in a thread: it connects and waits for its
        script on stdin until the step runs (_session_run sends it). An idle session holds no lock and
        no transaction; a failed run ends it (_close_check_sessions), and ABANDON ends every session
        on the temporary database anyway."""
        later = _ScriptLater()
        answer: dict = {}

        def work() -> None:
            try:
                answer["result"] = docker_exec.container_exec(self.ctx.docker(), step.container.id, step.argv,
                                                              dict(step.env), stdin=later)
            except BaseException as exc:  # a DockerError: raised where the result is taken
                answer["error"] = exc

        thread = threading.Thread(target=work, daemon=True, name="kompose-early-session")
        thread.start()
        self.__dict__.setdefault("_check_sessions", {})[id(step)] = (thread, later, answer)

    def _close_check_sessions(self) -> None:
        """A failed run: the sessions opened early get an empty script and end."""
        for _thread, later, _answer in self.__dict__.pop("_check_sessions", {}).values():
            later.give(b"")

    def _session_run(self, step, script: str):
        """Run ``script`` in ``step``'s session: the one opened early, or a new exec."""
        opened = self.__dict__.get("_check_sessions", {}).pop(id(step), None)
        if opened is None:
            return docker_exec.container_exec(self.ctx.docker(), step.container.id, step.argv, dict(step.env),
                                              stdin=io.BytesIO(script.encode()))
        thread, later, answer = opened
        later.give(script.encode())
        thread.join()
        if "error" in answer:
            raise answer["error"]
        return answer["result"]

    def _row_counts_match(self, path: Path, compression: str) -> str:
        """A plain dump's rows (COPY blocks, MariaDB's INSERTs), counted now, against its manifest's; '' when it records none."""
        try:
            found = manifest.read(path)
        except DumpError:
            return ""
        if found is None or found.rows is None:
            return ""
        try:
            with self._reading(f"count the rows of {path.name}", path) as bar:
                if mariadb_rows.is_dump_file(path, compression):
                    rows = mariadb_rows.scan_file(path, compression)
                else:
                    rows = plain_guard.scan_file(path, compression, bar).rows
        except DumpError as exc:
            return f"row counts differ: {exc.message}"
        problem = compare_rows(found.rows, rows, "its manifest records", "it holds")
        if problem:
            return f"row counts differ: {problem}"
        return f"rows of {len(rows)} table(s) match its manifest"

    def _guard_stdin(self, step: Exec, stdin):
        """Wrap a plain dump's stream in the guard; psql runs in restrict mode when it knows it."""
        key = None
        if self._psql_restricts(step):
            import secrets

            key = secrets.token_hex(24)
        from kompose.run.dump_needs import server_settings  # dumps kompose.sh restored (issue 17)

        return plain_guard.GuardedSource(stdin, step.stdin_file.name, key, known_settings=server_settings(self, step),
                                       no_owner=step.no_owner)

    def _psql_restricts(self, step: Exec) -> bool:
        container = step.container
        if step.settings_argv:  # psql's version came with the server's facts, in the same session
            from kompose.run.dump_needs import server_facts

            facts = server_facts(self, container, step.settings_argv, step.env)
            if facts.exit_code == 0 and facts.client:
                return plain_guard.psql_has_restrict(facts.client)
        cache = self.__dict__.setdefault("_restrict_cache", {})
        if container.id not in cache:
            try:
                result = docker_exec.container_exec(self.ctx.docker(), container.id, ("psql", "--version"), {})
                cache[container.id] = result.exit_code == 0 and plain_guard.psql_has_restrict(
                    result.stdout.decode("utf-8", "replace"))
            except KomposeError:
                cache[container.id] = False
        return cache[container.id]

    def _guarded(self, step: Exec, stdin) -> None:
        from kompose.run.dump_needs import report

        scan = stdin.scanner.scan
        self.files.setdefault(step.stdin_file, {})["scan"] = scan
        report(self, scan)
        if scan.neutralised:
            text = (f"{step.stdin_file.name}: neutralised {scan.summary()} (a pg_dump --create dump): "
                    "restored into the database it was started in, nothing else touched")
            self.console.detail(text, "yellow")
            self.outcome.notes.append(text)

    def _run_checkrestored(self, step: CheckRestored) -> None:
        expected: dict[str, int | None]
        scan = self.files.get(step.dump, {}).get("scan")
        recorded = None
        try:
            found = manifest.read(step.dump)
            recorded = found.rows if found else None
        except DumpError:
            pass
        if step.format == "plain":
            if scan is None:  # the restore did not stream through the guard: count the file
                fmt, compression = dumps.detect(step.dump)
                with self._reading(f"count the rows of {step.dump.name}", step.dump) as bar:
                    scan = plain_guard.scan_file(step.dump, compression, bar)
            expected = dict(scan.rows)
            # the rows the restore streamed against the manifest's: free, so every restore checks
            if recorded is not None:
                problem = compare_rows(recorded, scan.rows, "its manifest records", "the dump holds")
                if problem:
                    raise DumpError(f"{step.dump.name}: {problem}; nothing was swapped")
        else:
            # the table of contents is at the archive's start: a prefix, the whole file only if needed
            result = self._pg_restore(step.container, ("pg_restore", "--list"), step.dump, LIST_PREFIX)
            if result.exit_code != 0 and step.dump.stat().st_size > LIST_PREFIX:
                result = self._pg_restore(step.container, ("pg_restore", "--list"), step.dump, None)
            if result.exit_code != 0:
                from kompose.engines.postgres.sql import failure_message

                raise DumpError(failure_message("pg_restore --list", result.exit_code, result.stderr))
            expected = {key: None for key in table_data_entries(result.stdout.decode("utf-8", "replace"))}
            if recorded is not None:
                expected.update(recorded)
        if not expected:
            self.console.detail(f"{step.dump.name} holds no table data: nothing to check in {step.database}", "dim")
            if not step.then:
                self._close_check_sessions()
                return
        if step.then_what:
            self.console.detail(step.then_what, "blue")
        # the check, then (ANALYZE) in the same session: one exec
        script = (restored_check_script(list(expected), step.counts) if expected else "") + step.then
        self._open_next_session(step)  # the swap's session, when it follows
        result = self._session_run(step, script)
        if result.exit_code != 0:
            from kompose.engines.postgres.sql import failure_message

            tool = "psql (the restored tables" + (", ANALYZE)" if step.then else ")")
            raise KomposeError(failure_message(tool, result.exit_code, result.stderr))
        if not expected:
            return
        missing, counted = [], {}
        for line in result.stdout.decode("utf-8", "replace").splitlines():
            kind, _, rest = line.partition("\t")
            if kind == "missing":
                missing.append(rest)
            elif kind == "rows":
                table, _, count = rest.rpartition("\t")
                if count.strip().isdigit():
                    counted[table] = int(count)
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise DumpError(f"{step.database} lacks {len(missing)} table(s) {step.dump.name} holds data for "
                            f"({shown}): the restore did not land there; nothing was swapped")
        if step.counts:
            want = {table: rows for table, rows in expected.items() if rows is not None}
            problem = compare_rows(want, {t: counted.get(t, 0) for t in want}, "the dump holds", step.database + " has")
            if problem:
                raise DumpError(f"{step.database}: {problem}")
            self.console.detail(f"{step.database} holds the rows of all {len(want)} table(s) of {step.dump.name}",
                                "dim")
        else:
            self.console.detail(f"{step.database} holds all {len(expected)} table(s) {step.dump.name} has data for",
                                "dim")


def compare_rows(want: dict[str, int], have: dict[str, int], want_says: str, have_says: str) -> str:
    """'' when every table of ``want`` has its rows in ``have`` (and no more tables), else one line."""
    diffs = [f"{table}: {want_says} {rows}, {have_says} {have.get(table, 'none')}"
             for table, rows in sorted(want.items()) if have.get(table) != rows]
    extra = sorted(set(have) - set(want))
    if extra:
        diffs.append(f"{', '.join(extra[:3])}: not in {want_says.split()[0]} {want_says.split()[1]}")
    if not diffs:
        return ""
    return "; ".join(diffs[:3]) + (f" (and {len(diffs) - 3} more)" if len(diffs) > 3 else "")


def table_data_entries(listing: str) -> list[str]:
    """'schema.table' of every TABLE DATA entry of a ``pg_restore --list`` (names as stored)."""
    tables = []
    for line in listing.splitlines():
        if line.startswith(";") or " TABLE DATA " not in line:
            continue
        words = line.split(" TABLE DATA ", 1)[1].split(" ")
        if len(words) >= 3:  # schema, name (may hold spaces), owner
            tables.append(words[0] + "." + " ".join(words[1:-1]))
    return tables


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def restored_check_script(tables: list[str], counts: bool) -> str:
    """psql script: a 'missing<TAB>table' row for every table absent, and with ``counts`` a
    'rows<TAB>table<TAB>n' row (``count(*) FROM ONLY``: a COPY block holds one table's own rows)."""
    values = ",\n  ".join(f"({_literal(t.split('.', 1)[0])}, {_literal(t.split('.', 1)[1] if '.' in t else t)})"
                          for t in tables)
    exists = ("EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
              "WHERE n.nspname = v.s AND c.relname = v.t)")
    script = (f"SELECT 'missing', v.s || '.' || v.t FROM (VALUES\n  {values}) AS v(s, t)\n"
              f" WHERE NOT {exists};\n")
    if counts:
        script += (f"SELECT format('SELECT %L, %L, count(*) FROM ONLY %I.%I', 'rows', v.s || '.' || v.t, v.s, v.t)"
                   f" FROM (VALUES\n  {values}) AS v(s, t)\n WHERE {exists} \\gexec\n")
    return script
