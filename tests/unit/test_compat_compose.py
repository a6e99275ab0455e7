"""Pure pieces of kompose.sh compatibility: compose's own words, --help, the real compose project name."""

from __future__ import annotations

from pathlib import Path

from kompose.actions.compose import asks_help, compose_words
from kompose.docker.containers import project_name
from kompose.stacks import Stack


def test_help_counts_among_compose_words_only():
    assert asks_help("up", ["-d", "--help"]) and asks_help("up", ["-h"]) and asks_help("logs", ["-f", "-h"])
    assert not asks_help("exec", ["db", "psql", "--help"])  # the container program's
    assert not asks_help("run", ["-e", "X=1", "app", "sh", "-h"])
    assert asks_help("exec", ["-u", "root", "--help"])
    assert not asks_help("up", ["--", "--help"])
    assert asks_help("--help", []) and asks_help("-h", ["up"])
    assert compose_words("exec", ["-T", "-w", "/srv", "db", "ls"]) == ["-T", "-w", "/srv"]


def _stack(tmp_path: Path, compose: str) -> Stack:
    directory = tmp_path / "My_Blog"
    directory.mkdir()
    (directory / "compose.yaml").write_text(compose)
    return Stack("My_Blog", directory, directory / "compose.yaml")


def test_project_name_as_compose_picks_it(tmp_path):
    plain = _stack(tmp_path, "services:\n  app:\n    image: x\n    name: not-top-level\n")
    assert project_name(plain, {}) == "my_blog"
    assert project_name(plain, {"COMPOSE_PROJECT_NAME": "from-env"}) == "from-env"
    named = tmp_path / "n"
    named.mkdir()
    (named / "compose.yaml").write_text('name: "site-${ENVIRONMENT:-dev}"  # the project\nservices: {}\n')
    stack = Stack("n", named, named / "compose.yaml")
    assert project_name(stack, {}) == "site-dev"
    assert project_name(stack, {"ENVIRONMENT": "prod"}) == "site-prod"
    assert project_name(stack, {"ENVIRONMENT": "prod", "COMPOSE_PROJECT_NAME": "wins"}) == "wins"
