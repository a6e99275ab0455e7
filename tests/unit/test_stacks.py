"""Stack discovery under a root and selection by pattern."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kompose.errors import NoStackError, UsageError
from kompose.stacks import compose_file_of, discover, select
from tests.helpers import build_tree

SERVICES = "services: {}\n"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    build_tree(tmp_path / "root", {
        "auth/compose.yaml": SERVICES,
        "blog/docker-compose.yml": SERVICES,
        "blog2/compose.yml": SERVICES,
        "data/docker-compose.yaml": SERVICES,
        "sexy/compose.yaml": SERVICES,
        "_template/compose.yaml": SERVICES,
        ".git/compose.yaml": SERVICES,
        "notes/README": "not a stack\n",
        "compose.yaml": SERVICES,  # a compose file in the root itself is not a stack
    })
    return tmp_path / "root"


def names(stacks) -> list[str]:
    return [s.name for s in stacks]


def test_discovery_finds_directories_with_a_compose_file_sorted(root: Path):
    assert names(discover(root)) == ["auth", "blog", "blog2", "data", "sexy"]


def test_compose_file_preference(tmp_path: Path):
    build_tree(tmp_path, {
        "a/docker-compose.yml": SERVICES, "a/compose.yml": SERVICES, "a/docker-compose.yaml": SERVICES,
    })
    assert compose_file_of(tmp_path / "a").name == "compose.yml"
    (tmp_path / "a" / "compose.yaml").write_text(SERVICES)
    assert compose_file_of(tmp_path / "a").name == "compose.yaml"
    assert compose_file_of(tmp_path / "missing") is None


def test_symlinked_stack_inside_the_root_counts_one_outside_does_not(root: Path, tmp_path: Path):
    build_tree(tmp_path / "elsewhere", {"x/compose.yaml": SERVICES})
    os.symlink(tmp_path / "elsewhere" / "x", root / "outside")
    os.symlink(root / "auth", root / "auth-link")
    assert "outside" not in names(discover(root))
    assert "auth-link" in names(discover(root))


def test_root_that_is_not_a_directory(tmp_path: Path):
    with pytest.raises(UsageError, match="not a directory"):
        discover(tmp_path / "nope")


@pytest.mark.parametrize(
    "pattern, expected",
    [
        ("blog", ["blog"]),
        ("b*", ["blog", "blog2"]),
        ("*", ["auth", "blog", "blog2", "data", "sexy"]),
        ("sexy,auth", ["auth", "sexy"]),  # discovery order, not pattern order
        ("blog?,blog", ["blog", "blog2"]),
        (" data , data,d*", ["data"]),  # each stack once
        ("[ab]*", ["auth", "blog", "blog2"]),
        ("Blog", None),  # case matters, as in directory names
    ],
)
def test_select(root: Path, pattern: str, expected):
    stacks = discover(root)
    if expected is None:
        with pytest.raises(NoStackError):
            select(stacks, pattern)
    else:
        assert names(select(stacks, pattern)) == expected


def test_no_match_lists_the_stacks(root: Path):
    with pytest.raises(NoStackError) as caught:
        select(discover(root), "nomatch*")
    assert "nomatch*" in caught.value.message
    assert "auth, blog, blog2, data, sexy" in caught.value.message
    assert caught.value.exit_code == 3


def test_hidden_and_underscore_stacks_cannot_be_selected(root: Path):
    with pytest.raises(NoStackError):
        select(discover(root), "_template")
    with pytest.raises(NoStackError):
        select(discover(root), ".git")


@pytest.mark.parametrize("pattern", ["../x", "..", ".", "a/b", "/etc", "blog,../data"])
def test_paths_are_usage_errors(root: Path, pattern: str):
    with pytest.raises(UsageError, match="not a path"):
        select(discover(root), pattern)


@pytest.mark.parametrize("pattern", ["", ",", " , "])
def test_empty_pattern(root: Path, pattern: str):
    with pytest.raises(UsageError, match="empty"):
        select(discover(root), pattern)
