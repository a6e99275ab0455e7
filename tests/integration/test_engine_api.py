"""kompose's own client of a local engine (docker/engine_api.py) against the real engine: the SDK's
errors, an exec's streams both ways, and a db:export that never imports the docker SDK."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

from kompose.docker import exec as docker_exec
from kompose.docker.engine_api import LiteClient
from tests.helpers import kompose_env

pytestmark = pytest.mark.docker

SOCKET = "unix:///var/run/docker.sock"


def test_errors_are_the_sdks_and_unknown_calls_reach_the_sdk(docker_engine):
    from docker.errors import NotFound

    client = LiteClient(SOCKET)
    try:
        assert client.ping()
        with pytest.raises(NotFound) as caught:
            client.containers.get("speed-export-no-such-container")
        assert "no such container" in (caught.value.explanation or "").lower()
        assert caught.value.status_code == 404
        assert isinstance(client.info().get("ServerVersion"), str)
        assert isinstance(client.api.containers(all=True, filters={"label": ["io.kompose.none"]}), list)
        assert client.version()["ApiVersion"]  # not implemented here: the SDK answers
    finally:
        client.close()


def test_an_exec_streams_both_ways_through_the_hijacked_socket(pg_server):
    client = LiteClient(SOCKET)
    data = os.urandom(3 << 20)
    out = io.BytesIO()
    try:
        result = docker_exec.container_exec(client, pg_server.container.id, ("sh", "-c", "cat; echo oops >&2; exit 3"),
                                            {"X": "1"}, stdin=io.BytesIO(data), stdout=out)
    finally:
        client.close()
    assert result.exit_code == 3
    assert out.getvalue() == data
    assert result.stderr == b"oops\n"


def test_an_exec_in_a_container_that_is_gone_is_one_docker_error(docker_engine):
    from kompose.errors import DockerError

    client = LiteClient(SOCKET)
    try:
        for start in (lambda: docker_exec.container_exec(client, "0" * 64, ("true",), {}),
                      lambda: docker_exec.start_detached(client, "0" * 64, ("true",), {})):
            with pytest.raises(DockerError, match="container 000000000000 no longer exists"):
                start()
    finally:
        client.close()


def test_a_db_export_never_imports_the_docker_sdk(kroot, postgres_factory):
    server = postgres_factory(user="kompose", password="pw-lite-1", database="app")
    server.sql("CREATE TABLE t AS SELECT generate_series(1, 1000) AS id")
    name = kroot.stack("db", compose="services: {}\n",
                       env=f"DB_CONTAINER={server.container.name}\nDB_NAME=app\nDB_USER=kompose\n"
                           "DB_PASSWORD=pw-lite-1\n")
    for transport in ("direct", "exec"):
        run = subprocess.run([sys.executable, "-X", "importtime", "-m", "kompose", "--root", str(kroot.path), name,
                              "db:export", "--transport", transport], env=kompose_env(None), capture_output=True,
                             text=True, timeout=180)
        assert run.returncode == 0, run.stdout + run.stderr
        imported = {line.rsplit("|", 1)[-1].strip() for line in run.stderr.splitlines() if "|" in line}
        assert "kompose.docker.engine_api" in imported
        assert not {"docker", "requests", "urllib3"} & imported, transport
