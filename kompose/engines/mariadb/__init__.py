"""MariaDB (and MySQL): mariadb-dump / mariadb (mysqldump / mysql) inside the database container,
and the table-by-table swap (sql.py holds the pure builders; ENGINE is them behind the Engine
interface). Its safe import is not a set of scripts for Sql steps, as PostgreSQL's is, but shell
scripts run by Exec steps: the actions take its plans from ``plans``."""

from __future__ import annotations

from typing import Mapping

from kompose.engines.base import Engine
from kompose.engines.mariadb import sql
from kompose.errors import UsageError


class MariaDBEngine(Engine):
    name = "mariadb"
    flavour = "mariadb"
    admin_database = "mysql"
    complete_marker = sql.DUMP_COMPLETE_MARKER
    temp_suffix = sql.TEMP_SUFFIX
    prev_suffix = sql.PREV_SUFFIX
    drill_suffix = sql.DRILL_SUFFIX
    plans = "kompose.actions.mariadb_plans"

    # no psql-style scripts: the swap is sql.swap_argv() & co., run as Exec steps
    CREATE_TEMP = DROP_TEMP = DROP_PREV = CHECK_RIGHTS = SWAP = ROLLBACK = RECOVER = ABANDON = REOPEN = ""
    ANALYZE = RECREATE_IN_PLACE = IN_PLACE_PROPERTIES = ROW_COUNTS = ""

    def uses(self, env: Mapping[str, str]) -> bool:
        return bool(env.get("DB_NAME"))

    def connection(self, env: Mapping[str, str], stack: str) -> sql.Connection:
        return sql.connection(env, stack, flavour=self.flavour)

    def check_name(self, name: str, suffix: str = "") -> None:
        sql.check_name(name, suffix)

    def admin_connection(self, env: Mapping[str, str], conn, container) -> tuple:
        """The connection is the admin one already (root when the image's root password is set)."""
        return conn, ""

    def dump_argv(self, conn, fmt, gzip_level=0, output=None, no_sync=False):
        if fmt != "plain" or gzip_level or output:
            raise UsageError(f"a {self.name} dump is plain SQL to stdout (no custom format, no gzip in the tool)")
        return sql.dump_argv(conn)

    def restore_argv(self, conn, database, fmt):
        return sql.restore_argv(conn, database)

    def script_argv(self, conn, database, variables):
        return sql.client_argv(conn, database)

    hook_line = r"(at )line (\d+)"
    hook_rolled_back = "rolled back: its data changes; a CREATE, ALTER or DROP before the error was committed"

    def hook_argv(self, conn, database, variables, atomic):
        return sql.client_argv(conn, database)

    def hook_input(self, argv, text, static, told, atomic):
        """User variables (``@name``), set in the hook's own session before its files: the SQL reads
        them as @stack, @database, @dump_file…; atomic: the files between START TRANSACTION and
        COMMIT (DDL commits implicitly in MariaDB, so only data changes are all-or-nothing)."""
        return argv, sql.hook_prelude((*static, *told), atomic) + text.encode() + (b"COMMIT;\n" if atomic else b""), \
            1 + int(atomic)

    def variables(self, conn):
        return ()

    def drill_variables(self, conn):
        return ()

    def failure_message(self, tool, exit_code, stderr, own_script=False):
        """The client's last ERROR line (it echoes the failing statement around it, which is left
        out) and, when it is not that, the last line (kompose's own script says what it means)."""
        lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines()]
        lines = [line for line in lines if line and not set(line) <= {"-"}]
        if not lines:
            return f"{tool} failed (exit {exit_code}): no error output"
        errors = [line for line in lines if line.startswith(("ERROR", "mariadb-dump:", "mysqldump:"))]
        parts = errors[-1:] + ([lines[-1]] if not errors or lines[-1] != errors[-1] else [])
        return f"{tool} failed (exit {exit_code}): {' | '.join(parts)}"

    def lost_connection(self, stderr):
        return sql.lost_connection(stderr)


ENGINE = MariaDBEngine()
