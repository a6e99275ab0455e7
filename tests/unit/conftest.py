"""Unit tests run without Docker: point the SDK and CLI at a socket that does not exist."""

import pytest


@pytest.fixture(autouse=True)
def no_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/unit-tests-must-not-use-docker.sock")
