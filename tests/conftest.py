"""Shared fixtures: a real Docker Engine (never skipped), a per-test kompose root, PostgreSQL containers."""

from __future__ import annotations

import os
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import (
    APP_COMPOSE,
    MariaDB,
    Postgres,
    Result,
    build_tree,
    remove_by_prefix,
    run_kompose,
    start_mariadb,
    start_mysql,
    start_postgres,
)

from tests.restic_servers import rest_server, sftp_server  # noqa: F401  (session fixtures: restic repositories)

DOCKER_DIRS = ("integration", "faults")


def _docker_required() -> bool:
    """In CI and under scripts/test a Docker test that cannot run is a failure, never a skip."""
    return bool(os.environ.get("CI")) or bool(os.environ.get("KOMPOSE_TESTS_REQUIRE_DOCKER"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "docker: needs a real Docker Engine (scripts/engine starts one)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests under tests/integration and tests/faults are Docker tests, marked or not,
    and every Docker test first passes the session's engine check."""
    tests_dir = Path(__file__).parent
    for item in items:
        try:
            part = Path(item.path).relative_to(tests_dir).parts[0]
        except ValueError:
            part = ""
        if part in DOCKER_DIRS and not item.get_closest_marker("docker"):
            item.add_marker(pytest.mark.docker)
        if item.get_closest_marker("docker"):
            item.fixturenames.insert(0, "docker_engine")  # type: ignore[attr-defined]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    """A skipped Docker test fails when Docker is required: green must mean it ran."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail") and item.get_closest_marker("docker") and _docker_required():
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"Docker test skipped while Docker tests are required (CI / scripts/test): {reason}"


# --- the engine ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def docker_engine():
    """A Docker SDK client whose engine answered a ping and has the Compose v2 plugin.

    Fails (never skips) when the engine is not there: run scripts/engine first,
    or use scripts/test, which does.
    """
    import docker

    problem = None
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except Exception as exc:  # anything: missing socket, permission, engine down
        problem = f"{type(exc).__name__}: {exc}"
    if problem:  # outside the except block, so the report is one line, not a chained traceback
        pytest.fail(
            f"Docker Engine not answering ({problem}). "
            "Docker tests never skip: start one with scripts/engine, or run scripts/test.",
            pytrace=False,
        )
    compose = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
    if compose.returncode != 0:
        pytest.fail(f"`docker compose version` failed: {compose.stderr.strip()} (run scripts/engine)", pytrace=False)
    yield client
    client.close()


@pytest.fixture
def docker_client(docker_engine):
    return docker_engine


@pytest.fixture(scope="session")
def session_prefix() -> str:
    """A prefix unique to this pytest session for things shared by its tests."""
    return f"kts{secrets.token_hex(3)}-"


# --- a kompose root per test --------------------------------------------------------------


@dataclass
class KomposeRoot:
    """A temporary kompose root whose stack (= compose project) names are unique to one test.

    ``name("blog")`` is the real directory name, e.g. ``kt1a2b3c-blog``; write stacks
    with :meth:`stack` or :meth:`tree`, run the CLI with :meth:`run`.
    """

    path: Path
    prefix: str
    network: str

    def name(self, short: str) -> str:
        return f"{self.prefix}{short}"

    def dir(self, short: str) -> Path:
        return self.path / self.name(short)

    def tree(self, spec: dict[str, str | bytes]) -> Path:
        """build_tree relative to the root; ``{p}`` in a key stands for the prefix:
        ``{"{p}blog/compose.yaml": ...}``."""
        return build_tree(self.path, {key.replace("{p}", self.prefix): value for key, value in spec.items()})

    def stack(
        self,
        short: str,
        compose: str | None = APP_COMPOSE,
        env: str | None = None,
        hooks: str | None = None,
        files: dict[str, str | bytes] | None = None,
        compose_name: str = "compose.yaml",
    ) -> str:
        """Write one stack directory; returns its full name (its compose project)."""
        spec: dict[str, str | bytes] = dict(files or {})
        if compose is not None:
            spec[compose_name] = compose
        if env is not None:
            spec[".env"] = env
        if hooks is not None:
            spec["hooks.sh"] = hooks
        build_tree(self.dir(short), spec)
        return self.name(short)

    def run(self, *args: str, **kwargs) -> Result:
        return run_kompose(*args, root=self.path, **kwargs)


@pytest.fixture
def kroot(tmp_path: Path, request: pytest.FixtureRequest) -> KomposeRoot:
    """A kompose root in tmp_path with a root .env setting a unique NETWORK_NAME.

    Teardown removes every container, volume and network whose compose project
    starts with the test's prefix, pass or fail — when the test used Docker.
    """
    prefix = f"kt{secrets.token_hex(3)}-"
    root = KomposeRoot(path=tmp_path / "root", prefix=prefix, network=f"{prefix}net")
    build_tree(root.path, {".env": f"NETWORK_NAME={root.network}\n"})
    yield root
    if request.node.get_closest_marker("docker"):
        import docker

        client = docker.from_env(timeout=120)
        try:
            client.ping()
        except Exception:
            return  # no engine: the docker_engine check has already failed this test, and nothing ran
        try:
            remove_by_prefix(client, prefix, network_names=(root.network,))
        finally:
            client.close()


# --- PostgreSQL -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_server(docker_engine, session_prefix: str):
    """One PostgreSQL container (kompose/postgres:15) shared by the session; use ``pg`` for a fresh database."""
    server = start_postgres(docker_engine, name=f"{session_prefix}pg", label=session_prefix)
    yield server
    remove_by_prefix(docker_engine, session_prefix)


@pytest.fixture
def pg(pg_server: Postgres) -> Postgres:
    """A fresh database on the shared server, dropped afterwards: ``pg.sql(...)``, ``pg.checksum(table)``."""
    database = f"t_{secrets.token_hex(4)}"
    pg_server.create_database(database)
    yield pg_server.using(database)
    pg_server.drop_database(database)


@pytest.fixture
def postgres_factory(docker_engine, request: pytest.FixtureRequest):
    """Start PostgreSQL containers of one's own (own user/password/db/network); removed after the test."""
    prefix = f"ktp{secrets.token_hex(3)}-"
    count = 0

    def start(**kwargs) -> Postgres:
        nonlocal count
        count += 1
        return start_postgres(docker_engine, name=f"{prefix}pg{count}", label=prefix, **kwargs)

    yield start
    remove_by_prefix(docker_engine, prefix)


# --- MariaDB ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def mariadb_server(docker_engine, session_prefix: str):
    """One MariaDB container (kompose/mariadb:10.11) shared by the session; ``mariadb`` gives a fresh database."""
    # a canary root password with quotes and a semicolon: it must never show up anywhere
    server = start_mariadb(docker_engine, name=f"{session_prefix}mariadb", label=f"{session_prefix}m",
                           root_password=f"kt-root-{secrets.token_hex(6)};'\"pw")
    yield server
    remove_by_prefix(docker_engine, f"{session_prefix}m")


@pytest.fixture(scope="session")
def mysql_server(docker_engine, session_prefix: str):
    """One MySQL container (kompose/mysql:9.7, Debian sid's mysql-server) shared by the session."""
    from tests.helpers import MYSQL_IMAGE

    try:
        docker_engine.images.get(MYSQL_IMAGE)
    except Exception:  # under scripts/test (which builds it) a skip of a Docker test is a failure
        pytest.skip(f"no {MYSQL_IMAGE} image: scripts/images/build makes it (debootstrap of Debian sid's "
                    "mysql-server; see its log in /var/tmp/kompose-setup/debootstrap-mysql.log)")
    server = start_mysql(docker_engine, name=f"{session_prefix}mysql", label=f"{session_prefix}y",
                         root_password=f"kt-root-{secrets.token_hex(6)};'\"pw")
    yield server
    remove_by_prefix(docker_engine, f"{session_prefix}y")


@pytest.fixture
def mariadb(mariadb_server: MariaDB) -> MariaDB:
    """A fresh database on the shared server (its user has all privileges on it), dropped afterwards."""
    database = f"t_{secrets.token_hex(4)}"
    mariadb_server.create_database(database)
    yield mariadb_server.using(database)
    for name in (database, f"{database}__kompose_tmp", f"{database}__kompose_prev", f"{database}__kompose_drill"):
        mariadb_server.drop_database(name)
