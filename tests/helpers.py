"""Test helpers: build stack trees from dicts, run the real kompose CLI, talk to PostgreSQL in a container."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

REPO_ROOT = Path(__file__).resolve().parent.parent

APP_IMAGE = os.environ.get("KOMPOSE_APP_IMAGE", "kompose/app:latest")
PG_IMAGE = os.environ.get("KOMPOSE_PG_IMAGE", "kompose/postgres:15")

# A compose file for a stand-in app: one service that sleeps, nothing to pull.
APP_COMPOSE = f"""\
services:
  app:
    image: {APP_IMAGE}
    pull_policy: never
    command: ["sleep", "3600"]
    stop_grace_period: 1s
"""

# Variables that would make a test depend on the shell it was started from.
_LEAKY_VARIABLES = ("KOMPOSE_ROOT", "NO_COLOR", "FORCE_COLOR", "COLUMNS", "LINES", "NETWORK_NAME", "TERM")


def build_tree(root: Path | str, spec: Mapping[str, str | bytes]) -> Path:
    """Write files under ``root`` from ``{"relative/path": content}``; return ``root``.

    Text is dedented (so specs can be indented triple-quoted strings) and gets a
    trailing newline; bytes are written as they are. Parent directories are made.
    A ``hooks.sh`` or any ``*.sh`` file is made executable.
    """
    root = Path(root)
    for relative, content in spec.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            text = textwrap.dedent(content)
            if text.startswith("\n"):
                text = text[1:]
            if text and not text.endswith("\n"):
                text += "\n"
            path.write_text(text, encoding="utf-8")
        if path.suffix == ".sh":
            path.chmod(0o755)
    return root


@dataclass
class Result:
    """What a run of the CLI gave back: exit code, stdout, stderr, and both together."""

    argv: list[str]
    code: int
    stdout: str
    stderr: str
    elapsed: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()

    @property
    def last_line(self) -> str:
        """The last non-empty line of stdout (or of stderr when stdout is empty)."""
        for text in (self.stdout, self.stderr):
            lines = [line for line in text.splitlines() if line.strip()]
            if lines:
                return lines[-1].strip()
        return ""

    def __str__(self) -> str:
        return (
            f"$ {shlex.join(self.argv)}\n"
            f"exit code {self.code} after {self.elapsed:.1f}s\n"
            f"--- stdout ---\n{self.stdout}--- stderr ---\n{self.stderr}--- end ---"
        )


def kompose_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment the CLI runs with: ours, minus variables that leak from the shell, plus ``extra``.

    The checkout is put on PYTHONPATH so the CLI under test is this tree's kompose
    whether or not it is pip-installed.
    """
    env = {k: v for k, v in os.environ.items() if k not in _LEAKY_VARIABLES and not k.startswith("KOMPOSE_")}
    # keep the image overrides: they tell the CLI nothing, but stacks built from them use them
    for key in ("KOMPOSE_APP_IMAGE", "KOMPOSE_PG_IMAGE"):
        if key in os.environ:
            env[key] = os.environ[key]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    env.update(extra or {})
    return env


def run_kompose(
    *args: str,
    root: Path | str | None,
    env: Mapping[str, str] | None = None,
    timeout: float = 180,
    cwd: Path | str | None = None,
    input: str | None = None,
) -> Result:
    """Run the real CLI as a subprocess: ``python -m kompose --root ROOT ARGS...``.

    ``root=None`` leaves ``--root`` out (for ``--version``, ``$KOMPOSE_ROOT`` and
    cwd tests). stdin is /dev/null unless ``input`` is given (to check that hooks
    do not inherit it). On timeout the whole process group is killed and
    AssertionError carries the output so far.
    """
    argv = [sys.executable, "-m", "kompose"]
    if root is not None:
        argv += ["--root", str(root)]
    argv += [str(a) for a in args]
    started = time.monotonic()
    process = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=kompose_env(env),
        cwd=str(cwd) if cwd is not None else None,
        text=True,
        errors="replace",
        start_new_session=True,  # so a timeout can kill kompose and everything it started
    )
    try:
        stdout, stderr = process.communicate(input=input, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process.pid)
        stdout, stderr = process.communicate()
        result = Result(argv, -9, stdout, stderr, time.monotonic() - started)
        raise AssertionError(f"kompose did not finish within {timeout}s\n{result}") from None
    return Result(argv, process.returncode, stdout, stderr, time.monotonic() - started)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def wait_for(
    predicate: Callable[[], Any], timeout: float = 30, interval: float = 0.1, message: str = "condition"
) -> Any:
    """Poll ``predicate`` until it returns something truthy; return that. AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def pids_matching(marker: str) -> list[int]:
    """PIDs of live processes whose command line contains ``marker`` (pgrep -f), ours excluded."""
    result = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
    return [int(p) for p in result.stdout.split() if int(p) != os.getpid()]


# --- Docker ---------------------------------------------------------------------------

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
TEST_LABEL = "kompose.test"  # containers the fixtures start outside compose


def project_containers(client, project: str, all: bool = False) -> list:
    """Containers of one compose project (running ones unless ``all``)."""
    return client.containers.list(all=all, filters={"label": f"{PROJECT_LABEL}={project}"})


def running_services(client, project: str) -> set[str]:
    """Names of the services of a compose project that have a running container."""
    return {
        c.labels.get(SERVICE_LABEL, "")
        for c in project_containers(client, project)
        if c.status == "running"
    }


def remove_by_prefix(client, prefix: str, network_names: tuple[str, ...] = ()) -> list[str]:
    """Remove every container, volume and network whose compose project starts with ``prefix``,
    plus containers labelled by the fixtures with it and the named networks. Returns what went."""
    removed: list[str] = []

    def owned(labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return labels.get(PROJECT_LABEL, "").startswith(prefix) or labels.get(TEST_LABEL, "").startswith(prefix)

    # the low-level listing: the high-level one inspects every container, and on an engine
    # shared with other test runs a container can vanish between the listing and the inspect
    seen: set[str] = set()
    for label in (PROJECT_LABEL, TEST_LABEL):
        for item in client.api.containers(all=True, filters={"label": label}):
            if item["Id"] in seen or not owned(item.get("Labels")):
                continue
            seen.add(item["Id"])
            name = (item.get("Names") or [item["Id"][:12]])[0].lstrip("/")
            try:
                client.api.remove_container(item["Id"], force=True, v=True)
                removed.append(f"container {name}")
            except Exception as exc:  # already gone, or being removed by compose
                if "No such container" not in str(exc) and "already in progress" not in str(exc):
                    raise
    for network in client.networks.list():
        labels = network.attrs.get("Labels") or {}
        if owned(labels) or network.name in network_names or network.name.startswith(prefix):
            try:
                network.remove()
                removed.append(f"network {network.name}")
            except Exception as exc:
                if "not found" not in str(exc).lower():
                    raise
    for volume in client.volumes.list():
        labels = volume.attrs.get("Labels") or {}
        if owned(labels) or volume.name.startswith(prefix):
            try:
                volume.remove(force=True)
                removed.append(f"volume {volume.name}")
            except Exception as exc:
                if "no such volume" not in str(exc).lower():
                    raise
    return removed


# --- PostgreSQL in a container ----------------------------------------------------------


class SqlError(AssertionError):
    pass


def quote_ident(name: str) -> str:
    """A SQL identifier, double-quoted; ``schema.table`` quotes each part."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in name.split("."))


@dataclass
class Postgres:
    """A PostgreSQL server in a container, reached with psql over its local socket (trust auth).

    ``user`` / ``database`` are the defaults for :meth:`sql`; ``password`` is what
    POSTGRES_PASSWORD was, for tests that hand it to kompose.
    """

    container: Any  # docker.models.containers.Container
    user: str = "postgres"
    database: str = "postgres"
    password: str = ""
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_compose(cls, client, project: str, service: str = "db", **kwargs) -> "Postgres":
        """The PostgreSQL container of a compose service, user/db/password read from its environment."""
        containers = [c for c in project_containers(client, project) if c.labels.get(SERVICE_LABEL) == service]
        assert containers, f"no running container for service {service!r} in compose project {project!r}"
        container = containers[0]
        env = dict(item.split("=", 1) for item in container.attrs["Config"]["Env"] if "=" in item)
        user = kwargs.pop("user", env.get("POSTGRES_USER", "postgres"))
        return cls(
            container,
            user=user,
            database=kwargs.pop("database", env.get("POSTGRES_DB", user)),
            password=kwargs.pop("password", env.get("POSTGRES_PASSWORD", "")),
            env=env,
            **kwargs,
        )

    def exec(self, argv: list[str], **kwargs) -> tuple[int, str]:
        """Run a command in the container; (exit code, combined output)."""
        code, output = self.container.exec_run(argv, **kwargs)
        return code, output.decode("utf-8", "replace")

    def wait_ready(self, timeout: float = 60) -> "Postgres":
        """Wait until the real server accepts connections.

        The entrypoint's init phase runs a temporary server on the socket only, so
        readiness is checked over TCP, which only the final server listens on.
        """

        def ready() -> bool:
            self.container.reload()
            if self.container.status in ("exited", "dead"):
                logs = self.container.logs(tail=30).decode("utf-8", "replace")
                raise AssertionError(f"postgres container {self.container.name} exited:\n{logs}")
            code, _ = self.exec(["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432", "-U", self.user])
            return code == 0

        wait_for(ready, timeout=timeout, interval=0.2, message=f"postgres in {self.container.name}")
        return self

    def sql(self, statement: str, database: str | None = None, user: str | None = None) -> str:
        """Run SQL with ``psql -X -At -v ON_ERROR_STOP=1 -c``; its output, stripped. SqlError on failure."""
        argv = [
            "psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
            "-U", user or self.user, "-d", database or self.database, "-c", statement,
        ]  # fmt: skip
        code, output = self.exec(argv)
        if code != 0:
            raise SqlError(f"psql exited {code} on {statement!r}:\n{output}")
        return output.strip()

    def rows(self, query: str, database: str | None = None) -> list[tuple[str, ...]]:
        """Rows of a query as tuples of text (psql's unaligned '|' separated output)."""
        out = self.sql(query, database=database)
        return [tuple(line.split("|")) for line in out.splitlines()] if out else []

    def scalar(self, query: str, database: str | None = None) -> str:
        return self.sql(query, database=database)

    def databases(self) -> list[str]:
        return [r[0] for r in self.rows("SELECT datname FROM pg_database WHERE NOT datistemplate ORDER BY 1")]

    def tables(self, database: str | None = None, schema: str = "public") -> list[str]:
        return [
            r[0]
            for r in self.rows(
                f"SELECT tablename FROM pg_tables WHERE schemaname = '{schema}' ORDER BY 1", database=database
            )
        ]

    def count(self, table: str, database: str | None = None) -> int:
        return int(self.sql(f"SELECT count(*) FROM {quote_ident(table)}", database=database))

    def checksum(self, table: str, database: str | None = None) -> str:
        """An order-independent fingerprint of a table's contents: row count and md5 of its sorted rows."""
        query = (
            f"SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '') "
            f"FROM {quote_ident(table)} AS t"
        )
        return self.sql(query, database=database)

    def checksums(self, database: str | None = None, schema: str = "public") -> dict[str, str]:
        """``{table: checksum}`` for every table of a schema: compare a whole database before/after."""
        return {t: self.checksum(f"{schema}.{t}", database=database) for t in self.tables(database, schema)}

    def create_database(self, name: str) -> None:
        self.sql(f"CREATE DATABASE {quote_ident(name)}", database="postgres")

    def drop_database(self, name: str) -> None:
        self.sql(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)", database="postgres")

    def using(self, database: str) -> "Postgres":
        """The same server with another default database."""
        return Postgres(self.container, user=self.user, database=database, password=self.password, env=self.env)


def start_postgres(
    client,
    name: str,
    label: str,
    user: str = "kompose",
    password: str = "kompose-test-password",
    database: str = "app",
    network: str | None = None,
    timeout: float = 60,
) -> Postgres:
    """Start a PostgreSQL container (removed by :func:`remove_by_prefix` via ``label``) and wait for it."""
    container = client.containers.run(
        PG_IMAGE,
        name=name,
        detach=True,
        environment={"POSTGRES_USER": user, "POSTGRES_PASSWORD": password, "POSTGRES_DB": database},
        labels={TEST_LABEL: label},
        network=network,
        tmpfs={"/var/lib/postgresql/data": "rw"},  # throwaway data, and faster than a volume
    )
    return Postgres(container, user=user, database=database, password=password).wait_ready(timeout)


# --- MariaDB in a container -------------------------------------------------------------

MARIADB_IMAGE = os.environ.get("KOMPOSE_MARIADB_IMAGE", "kompose/mariadb:10.11")
MYSQL_IMAGE = os.environ.get("KOMPOSE_MYSQL_IMAGE", "kompose/mysql:9.7")


def quote_mariadb_ident(name: str) -> str:
    """A MariaDB identifier, backquoted; ``db.table`` quotes each part."""
    return ".".join("`" + part.replace("`", "``") + "`" for part in name.split("."))


@dataclass
class MariaDB:
    """A MariaDB server in a container, reached with the ``mariadb`` client as root over its
    local socket (unix_socket authentication: no password anywhere in the test's argv).

    ``user`` / ``password`` / ``database`` are what MARIADB_USER / MARIADB_PASSWORD /
    MARIADB_DATABASE were, for tests that hand them to kompose.
    """

    container: Any
    user: str = "kompose"
    database: str = "app"
    password: str = ""
    root_password: str = ""

    engine = "mariadb"
    client = "mariadb"
    admin = "mariadb-admin"

    def client_env(self) -> dict[str, str]:
        """The environment of the test's own clients (root over the socket: unix_socket, none)."""
        return {}

    def client_argv(self, database: str | None = None) -> list[str]:
        """The client as root, for the test's own statements."""
        argv = [self.client, "-uroot"]
        return argv + [f"--database={database}"] if database else argv

    def docker_exec(self, *client_args: str, database: str | None = None) -> tuple[list[str], dict[str, str]]:
        """(argv, env) of ``docker exec -i`` running the client: a password travels as ``-e NAME``
        (its value in docker's own environment, never in an argv)."""
        env = self.client_env()
        argv = ["docker", "exec", "-i", *[f"-e{name}" for name in env], self.container.id,
                *self.client_argv(database), *client_args]
        return argv, {**os.environ, **env}

    def exec(self, argv: list[str], **kwargs) -> tuple[int, str]:
        env = self.client_env()
        if env:
            kwargs["environment"] = {**env, **kwargs.get("environment", {})}
        code, output = self.container.exec_run(argv, **kwargs)
        return code, output.decode("utf-8", "replace")

    def wait_ready(self, timeout: float = 90) -> "MariaDB":
        """Wait until the final server answers over TCP (the entrypoint's setup server has no networking)."""

        def ready() -> bool:
            self.container.reload()
            if self.container.status in ("exited", "dead"):
                logs = self.container.logs(tail=30).decode("utf-8", "replace")
                raise AssertionError(f"{self.engine} container {self.container.name} exited:\n{logs}")
            code, _ = self.exec([self.admin, "--protocol=tcp", "-h", "127.0.0.1", "-uroot", "ping", "--silent"])
            return code == 0 and self.exec([*self.client_argv(), "-e", "SELECT 1"])[0] == 0

        wait_for(ready, timeout=timeout, interval=0.2, message=f"{self.engine} in {self.container.name}")
        return self

    def sql(self, statement: str, database: str | None = None) -> str:
        """Run SQL as root (``mariadb -N -B``); its output, stripped. SqlError on failure."""
        argv = [*self.client_argv(database or self.database or None), "--batch", "--skip-column-names",
                "--default-character-set=utf8mb4"]
        code, output = self.exec(argv + ["-e", statement])
        if code != 0:
            raise SqlError(f"{self.client} exited {code} on {statement[:200]!r}:\n{output}")
        return output.strip()

    def script(self, text: str, database: str | None = None) -> str:
        """Run a multi-statement script (DELIMITER works) as root, fed on stdin."""
        import subprocess

        argv, env = self.docker_exec("--batch", "--skip-column-names", "--default-character-set=utf8mb4",
                                     database=database or self.database or None)
        done = subprocess.run(argv, input=text.encode(), capture_output=True, env=env)
        if done.returncode != 0:
            raise SqlError(f"{self.client} exited {done.returncode} on a script:\n{done.stderr.decode()}")
        return done.stdout.decode().strip()

    def rows(self, query: str, database: str | None = None) -> list[tuple[str, ...]]:
        out = self.sql(query, database=database)
        return [tuple(line.split("\t")) for line in out.splitlines()] if out else []

    def scalar(self, query: str, database: str | None = None) -> str:
        return self.sql(query, database=database)

    def databases(self) -> list[str]:
        return [r[0] for r in self.rows("SHOW DATABASES", database="mysql")]

    def tables(self, database: str | None = None) -> list[str]:
        db = database or self.database
        return [r[0] for r in self.rows(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = "
            f"'{db}' AND table_type = 'BASE TABLE' ORDER BY 1", database="mysql")]

    def count(self, table: str, database: str | None = None) -> int:
        return int(self.sql(f"SELECT count(*) FROM {quote_mariadb_ident(table)}", database=database))

    def checksum(self, table: str, database: str | None = None) -> str:
        """``CHECKSUM TABLE`` (content, not layout) and the row count."""
        db = database or self.database
        ident = quote_mariadb_ident(f"{db}.{table}")
        out = self.sql(f"CHECKSUM TABLE {ident} EXTENDED", database="mysql")
        return f"{self.count(table, db)}:{out.split()[-1]}"

    def checksums(self, database: str | None = None) -> dict[str, str]:
        return {t: self.checksum(t, database) for t in self.tables(database)}

    def create_database(self, name: str) -> None:
        self.sql(f"CREATE DATABASE {quote_mariadb_ident(name)} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
                 database="mysql")
        self.sql(f"GRANT ALL PRIVILEGES ON {quote_mariadb_ident(name)}.* TO '{self.user}'@'%'", database="mysql")

    def drop_database(self, name: str) -> None:
        self.sql(f"DROP DATABASE IF EXISTS {quote_mariadb_ident(name)}", database="mysql")

    def using(self, database: str) -> "MariaDB":
        return type(self)(self.container, user=self.user, database=database, password=self.password,
                          root_password=self.root_password)


class MySQL(MariaDB):
    """A MySQL server in a container (kompose/mysql): MySQL's tools, and root's password (MySQL has
    no unix_socket root) in the client's environment (MYSQL_PWD), never in an argv. Statistics
    of information_schema.tables (AUTO_INCREMENT) are read fresh, not from MySQL's cache."""

    engine = "mysql"
    client = "mysql"
    admin = "mysqladmin"

    def client_env(self) -> dict[str, str]:
        return {"MYSQL_PWD": self.root_password}

    def client_argv(self, database: str | None = None) -> list[str]:
        return [*super().client_argv(database), "--init-command=SET SESSION information_schema_stats_expiry = 0"]


def start_mariadb(
    client,
    name: str,
    label: str,
    user: str = "kompose",
    password: str = "kompose-test-password",
    database: str = "app",
    root_password: str = "kompose-test-root-password",
    network: str | None = None,
    timeout: float = 90,
) -> MariaDB:
    """Start a MariaDB container (removed by :func:`remove_by_prefix` via ``label``) and wait for it."""
    return _start_server(client, MARIADB_IMAGE, "MARIADB", MariaDB, name, label, user, password, database,
                         root_password, network, timeout)


def start_mysql(
    client,
    name: str,
    label: str,
    user: str = "kompose",
    password: str = "kompose-test-password",
    database: str = "app",
    root_password: str = "kompose-test-root-password",
    network: str | None = None,
    timeout: float = 120,
) -> MySQL:
    """Start a MySQL container (kompose/mysql, removed by :func:`remove_by_prefix` via ``label``) and wait for it."""
    return _start_server(client, MYSQL_IMAGE, "MYSQL", MySQL, name, label, user, password, database,
                         root_password, network, timeout)


def _start_server(client, image, prefix, kind, name, label, user, password, database, root_password, network,
                  timeout):
    """A MariaDB or MySQL container, its image's variables named with ``prefix``; ready when returned."""
    container = client.containers.run(
        image,
        name=name,
        detach=True,
        environment={f"{prefix}_ROOT_PASSWORD": root_password, f"{prefix}_DATABASE": database,
                     f"{prefix}_USER": user, f"{prefix}_PASSWORD": password},
        labels={TEST_LABEL: label},
        network=network,
        tmpfs={"/var/lib/mysql": "rw"},
    )
    return kind(container, user=user, database=database, password=password,
                root_password=root_password).wait_ready(timeout)


def restic_processes(*words: bytes) -> list[int]:
    """The pids of the restic processes running now whose argv holds every one of ``words``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    argv = handle.read().split(b"\0")
            except OSError:
                continue
            if argv and argv[0].endswith(b"restic") and all(word in argv for word in words):
                found.append(int(entry))
    return found
