"""Issue 17: dumps kompose.sh restored, through the real CLI into a real PostgreSQL 15 of a compose
stack: a pg_dump 17 dump (``SET transaction_timeout = 0;``), a dump whose objects belong to a
role this server lacks (``--no-owner``), and ``--in-place`` refusing, before it drops anything,
a dump the server cannot take. The dumps are named as kompose.sh names them, without manifests;
the hooks are written as its users write them (``docker exec "${COMPOSE_PROJECT_NAME}-postgres-1"``).
"""

from __future__ import annotations

import re

from tests.helpers import Postgres
from tests.integration.test_compat import PASSWORD, events, pg_stack_compose

HOOKS = """
hook_post_db_import() {
    local rows
    rows=$(docker exec "${COMPOSE_PROJECT_NAME}-postgres-1" psql -U postgres -d "$DB_NAME" -Atc 'SELECT count(*) FROM items')
    echo "post_db_import $(basename "$1") rows=$rows" >> "${SCRIPT_DIR}/events.log"
}
"""
DUMP_NAME = "blog_20250101_030000.sql"


def blog_stack(kroot, docker_client) -> tuple[str, Postgres]:
    name = kroot.name("blog")
    stack = kroot.stack("blog", compose=pg_stack_compose(),
                        env=f"DB_NAME=blog\nDB_USER=postgres\nDB_PASSWORD={PASSWORD}\nCOMPOSE_PROJECT_NAME={name}\n",
                        hooks=HOOKS)
    up = kroot.run(stack, "up", "-d")
    assert up.code == 0, up
    server = Postgres.from_compose(docker_client, stack, service="postgres").wait_ready().using("blog")
    server.sql("CREATE TABLE items(id int primary key, label text); "
               "INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 5) g;")
    return stack, server


def write_dump(kroot, server: Postgres, edit=lambda text: text) -> str:
    """pg_dump in the container, as kompose.sh's users ran it, edited as another server's would read."""
    code, output = server.container.exec_run(["pg_dump", "-U", "postgres", "-d", "blog"], stderr=False)
    assert code == 0, output
    text = edit(output.decode())
    (kroot.dir("blog") / DUMP_NAME).write_text(text)
    return text


def as_pg17(text: str) -> str:
    """What pg_dump 17 writes that 15 does not know: its header versions, SET transaction_timeout."""
    text = re.sub(r"(-- Dumped (from database|by pg_dump) version )15\.\d+", r"\g<1>17.2", text)
    return text.replace("SET idle_in_transaction_session_timeout = 0;\n",
                        "SET idle_in_transaction_session_timeout = 0;\nSET transaction_timeout = 0;\n", 1)


def owned_by_bob(text: str) -> str:
    assert "OWNER TO postgres;" in text
    return text.replace("OWNER TO postgres;", "OWNER TO bob;")


def damage(server: Postgres) -> None:
    server.sql("DELETE FROM items WHERE id > 2; INSERT INTO items VALUES (99, 'after the dump');")


def labels(server: Postgres) -> list[str]:
    return [r[0] for r in server.rows("SELECT id || ':' || label FROM items ORDER BY id")]


def test_a_pg_dump_17_dump_restores_into_15_skipping_its_unknown_set_line(kroot, docker_client):
    stack, server = blog_stack(kroot, docker_client)
    before = labels(server)
    text = write_dump(kroot, server, as_pg17)
    assert "SET transaction_timeout = 0;" in text
    damage(server)

    plan = kroot.run("-n", "--verbose", stack, "db:import")  # a step's second lines: --verbose
    assert plan.code == 0, plan
    assert "SET lines of parameters this server does not know are skipped" in plan.stdout, plan

    restored = kroot.run(stack, "db:import")
    assert restored.code == 0, restored
    assert labels(server) == before, restored
    warning = [line for line in restored.output.splitlines() if "transaction_timeout" in line]
    assert warning and "does not know" in warning[0], restored
    assert events(kroot) == [f"post_db_import {DUMP_NAME} rows=5"], restored


def test_a_dump_whose_objects_belong_to_a_missing_role_needs_no_owner(kroot, docker_client):
    stack, server = blog_stack(kroot, docker_client)
    before = labels(server)
    write_dump(kroot, server, owned_by_bob)
    damage(server)
    damaged = labels(server)

    refused = kroot.run(stack, "db:import")
    assert refused.code == 1, refused
    assert 'role "bob" does not exist' in refused.output, refused
    assert labels(server) == damaged  # the live database as it was

    plan = kroot.run("-n", stack, "db:import", "--no-owner")
    assert plan.code == 0, plan
    assert "--no-owner: every restored object belongs to DB_USER (postgres)" in plan.stdout, plan

    restored = kroot.run(stack, "db:import", "--no-owner")
    assert restored.code == 0, restored
    assert labels(server) == before, restored
    assert server.scalar("SELECT tableowner FROM pg_tables WHERE tablename = 'items'") == "postgres"
    assert events(kroot) == [f"post_db_import {DUMP_NAME} rows=5"], restored


def test_in_place_checks_roles_and_version_before_it_drops_anything(kroot, docker_client):
    stack, server = blog_stack(kroot, docker_client)
    before = labels(server)
    write_dump(kroot, server, owned_by_bob)
    damage(server)
    damaged = labels(server)

    refused = kroot.run(stack, "db:import", "--in-place")
    assert refused.code == 1, refused
    assert "roles missing on this server: bob" in refused.output, refused
    assert "nothing was dropped" in refused.output, refused
    assert labels(server) == damaged  # still there, rows and all (it used to be left empty)

    restored = kroot.run(stack, "db:import", "--in-place", "--no-owner")
    assert restored.code == 0, restored
    assert labels(server) == before, restored

    # a dump of a newer PostgreSQL: refused in place; the safe path tries it on a copy
    write_dump(kroot, server, as_pg17)
    damage(server)
    damaged = labels(server)
    newer = kroot.run(stack, "db:import", "--in-place")
    assert newer.code == 1, newer
    assert "PostgreSQL 17, newer than this server's 15" in newer.output, newer
    assert labels(server) == damaged
    safe = kroot.run(stack, "db:import")
    assert safe.code == 0, safe
    assert labels(server) == before, safe


# --- 8. a database outside Docker, reached only through a port published on 127.0.0.1 -----------


def test_a_database_outside_docker_is_exported_and_imported_through_a_tools_container(kroot, docker_client):
    from tests.helpers import PG_IMAGE, TEST_LABEL, wait_for

    server_container = docker_client.containers.run(
        PG_IMAGE, name=kroot.name("outside"), detach=True, labels={TEST_LABEL: kroot.prefix},
        environment={"POSTGRES_USER": "kompose", "POSTGRES_PASSWORD": PASSWORD, "POSTGRES_DB": "shop"},
        ports={"5432/tcp": ("127.0.0.1", None)}, tmpfs={"/var/lib/postgresql/data": "rw"},
    )
    server = Postgres(server_container, user="kompose", database="shop", password=PASSWORD).wait_ready()

    def published() -> str:
        server_container.reload()
        bindings = server_container.attrs["NetworkSettings"]["Ports"].get("5432/tcp") or []
        return bindings[0]["HostPort"] if bindings else ""

    port = wait_for(published, message="the published port")
    server.sql("CREATE TABLE items(id int primary key, label text); "
               "INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 5) g;")
    before = labels(server)
    project = kroot.name("shop")
    # kompose.sh's layout: DB_HOST an address, DB_PORT the published port; the app restarted by its hook
    stack = kroot.stack("shop", env=f"DB_HOST=127.0.0.1\nDB_PORT={port}\nDB_NAME=shop\nDB_USER=kompose\n"
                                    f"DB_PASSWORD={PASSWORD}\nCOMPOSE_PROJECT_NAME={project}\n",
                        hooks='hook_post_db_import() { docker restart "${COMPOSE_PROJECT_NAME}-app-1"; }\n')
    assert kroot.run(stack, "up", "-d").code == 0
    [app] = [c for c in docker_client.containers.list(filters={"label": f"com.docker.compose.project={project}"})]
    started = app.attrs["State"]["StartedAt"]

    plan = kroot.run("-n", "-v", stack, "db:export")  # --verbose: pg_dump's argv, beside the check's
    assert plan.code == 0, plan
    assert "a database outside Docker, reached over the network at 127.0.0.1:" + port in plan.stdout, plan
    assert "of the server's major version" in plan.stdout and "--port=" + port in plan.stdout, plan

    export = kroot.run(stack, "db:export")
    assert export.code == 0, export
    assert "for PostgreSQL 15 at 127.0.0.1:" + port in export.stdout, export
    [dump] = kroot.dir("shop").glob("shop_*.sql")
    assert "COPY public.items" in dump.read_text()

    damage(server)
    restored = kroot.run(stack, "db:import")
    assert restored.code == 0, restored
    assert labels(server) == before, restored
    app.reload()
    assert app.attrs["State"]["StartedAt"] != started, restored  # the hook's docker restart ran
    # the tools containers are gone
    left = docker_client.api.containers(all=True, filters={"label": f"io.kompose.tools.directory={kroot.dir('shop')}"})
    assert left == [], left
    assert PASSWORD not in export.output + restored.output + plan.output
