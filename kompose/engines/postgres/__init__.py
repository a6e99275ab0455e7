"""PostgreSQL: pg_dump, psql and pg_restore inside the database container, and the SQL of the safe
swap (sql.py holds the pure builders; ENGINE is them behind the Engine interface)."""

from __future__ import annotations

from typing import Mapping

from kompose.engines.base import Engine
from kompose.engines.postgres import sql


class PostgresEngine(Engine):
    name = "postgres"
    admin_database = "postgres"
    complete_marker = sql.DUMP_COMPLETE_MARKER
    temp_suffix = sql.TEMP_SUFFIX
    prev_suffix = sql.PREV_SUFFIX
    drill_suffix = sql.DRILL_SUFFIX

    CREATE_TEMP = sql.CREATE_TEMP
    DROP_TEMP = sql.DROP_TEMP
    CHECK_RIGHTS = sql.CHECK_RIGHTS
    SWAP = sql.SWAP
    ROLLBACK = sql.ROLLBACK
    RECOVER = sql.RECOVER
    ABANDON = sql.ABANDON
    REOPEN = sql.REOPEN
    ANALYZE = sql.ANALYZE
    RECREATE_IN_PLACE = sql.RECREATE_IN_PLACE
    IN_PLACE_PROPERTIES = sql.IN_PLACE_PROPERTIES
    ROW_COUNTS = sql.ROW_COUNTS
    SIZE_QUERY = "SELECT pg_database_size(current_database());\n"
    EXPORT_CHECK = sql.RLS_CHECK
    EXPORT_LEFTOVERS = sql.LEFTOVERS
    LEFTOVERS_LINE = sql.LEFTOVERS_LINE
    plain_guard = True

    def uses(self, env: Mapping[str, str]) -> bool:
        return sql.uses_postgres(env)

    def connection(self, env: Mapping[str, str], stack: str) -> sql.Connection:
        return sql.connection(env, stack)

    def check_name(self, name: str, suffix: str = "") -> None:
        sql.check_name(name, suffix)

    def admin_connection(self, env: Mapping[str, str], conn, container) -> tuple:
        if getattr(container, "network", ""):
            # a database outside Docker: no unix socket of the server in the tools container
            from dataclasses import replace

            if env.get("DB_ADMIN_USER"):
                admin = replace(conn, user=env["DB_ADMIN_USER"], password=env.get("DB_ADMIN_PASSWORD", ""))
                return admin, "check DB_ADMIN_USER and DB_ADMIN_PASSWORD in the stack's .env"
            return conn, (f"the database is outside Docker: kompose's admin steps run as DB_USER {conn.user} over "
                          "the network; set DB_ADMIN_USER and DB_ADMIN_PASSWORD (a superuser) when it lacks the rights")
        admin = sql.admin_connection(env, conn, container.superuser)
        if env.get("DB_ADMIN_USER"):
            hint = "check DB_ADMIN_USER and DB_ADMIN_PASSWORD in the stack's .env"
        else:
            hint = (f"kompose connects as the container's superuser {admin.user} over its unix socket; set "
                    "DB_ADMIN_USER and DB_ADMIN_PASSWORD (a superuser) in the stack's .env when that socket is "
                    "not trusted")
        return admin, hint

    def dump_argv(self, conn, fmt, gzip_level=0, output=None, no_sync=False):
        return sql.pg_dump_argv(conn, fmt, gzip_level, output=output, no_sync=no_sync)

    def via(self, conn, container):
        if not getattr(container, "network", ""):
            return conn
        from dataclasses import replace

        host, _, port = container.network.rpartition(":")
        return replace(conn, host=host, port=port)

    def restore_argv(self, conn, database, fmt, no_owner=False):
        argv = sql.restore_argv(conn, database, fmt)
        if no_owner and fmt == "custom" and "--no-owner" not in argv:  # plain: the dump filter skips OWNER TO
            argv = (argv[0], "--no-owner", *argv[1:])
        return argv

    def script_argv(self, conn, database, variables):
        return sql.psql_script_argv(conn, database, variables)

    def drop_old(self, conn):
        old = sql.old_name(conn.database)
        return old, sql.drop_old_statements(old)

    def detach_from_script(self, argv):
        return sql.detach_from_script(argv)

    def commands_argv(self, conn, database, commands):
        return sql.psql_commands_argv(conn, database, commands)

    def hook_argv(self, conn, database, variables, atomic):
        argv = list(self.script_argv(conn, database, variables))
        if atomic:
            argv.insert(len(argv) - 1, "--single-transaction")
        return tuple(argv)

    def hook_input(self, argv, text, static, told, atomic):
        """psql variables (``--set``, before ``--file=-``): the SQL reads them as :'name'."""
        argv = list(argv)
        argv[-1:-1] = [f"--set={key}={value}" for key, value in told]
        return tuple(argv), text.encode(), 0

    def variables(self, conn):
        return sql.variables(conn)

    def drill_variables(self, conn):
        return sql.drill_variables(conn)

    def failure_message(self, tool, exit_code, stderr, own_script=False):
        return sql.failure_message(tool, exit_code, stderr, own_script)

    def lost_connection(self, stderr):
        return sql.lost_connection(stderr)

    def lock_wait_failed(self, stderr):
        return sql.lock_wait_failed(stderr)

    def lock_holders(self, dump_argv):
        return sql.lock_holders_argv(dump_argv), sql.LOCK_HOLDERS


ENGINE = PostgresEngine()
