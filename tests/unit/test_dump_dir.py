"""KOMPOSE_DUMP_DIR's resolution (dumps/files.dump_dir) and the modes of kompose's small state files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kompose.dumps.files import dump_dir
from kompose.errors import ConfigError
from kompose.host import swap_mark
from kompose.host.files import make_private_dir, write_atomically


def test_unset_or_empty_is_the_stack_directory(tmp_path):
    stack = tmp_path / "root" / "blog"
    assert dump_dir(stack, "blog", {}, tmp_path / "root") == stack.resolve()
    assert dump_dir(stack, "blog", {"KOMPOSE_DUMP_DIR": "  "}, tmp_path / "root") == stack.resolve()


def test_stack_expands_and_without_it_the_name_is_appended(tmp_path):
    root = tmp_path / "root"
    assert dump_dir(root / "blog", "blog", {"KOMPOSE_DUMP_DIR": "/srv/b/{stack}/pg"}, root) == Path("/srv/b/blog/pg")
    assert dump_dir(root / "blog", "blog", {"KOMPOSE_DUMP_DIR": "/srv/b/"}, root) == Path("/srv/b/blog")


def test_relative_is_relative_to_the_root_and_tilde_expands(tmp_path, monkeypatch):
    root = tmp_path / "root"
    assert dump_dir(root / "blog", "blog", {"KOMPOSE_DUMP_DIR": "../dumps"}, root) == (tmp_path / "dumps/blog")
    assert dump_dir(root / "blog", "blog", {"KOMPOSE_DUMP_DIR": "_dumps/{stack}"}, root) == root / "_dumps/blog"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert dump_dir(root / "blog", "blog", {"KOMPOSE_DUMP_DIR": "~/d"}, root) == tmp_path / "home/d/blog"


@pytest.mark.parametrize("value", ["/srv/{host}/{stack}", "/srv/{stack", "/srv/}"])
def test_another_placeholder_is_a_configuration_error(tmp_path, value):
    with pytest.raises(ConfigError, match="only {stack} is expanded"):
        dump_dir(tmp_path / "blog", "blog", {"KOMPOSE_DUMP_DIR": value}, tmp_path)


@pytest.fixture
def default_umask():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_the_dump_dir_is_made_0700_and_state_files_0600(tmp_path, default_umask):
    directory = tmp_path / "a" / "b"
    assert make_private_dir(directory) is True
    assert oct(directory.stat().st_mode & 0o777) == "0o700"
    assert make_private_dir(directory) is False
    mark = swap_mark.mark_path(directory)
    swap_mark.write_mark(mark, "swap")
    assert oct(mark.stat().st_mode & 0o777) == "0o600"
    write_atomically(directory / "state.json", "{}", mode=0o600)
    assert oct((directory / "state.json").stat().st_mode & 0o777) == "0o600"
    write_atomically(directory / "plain.txt", "x")  # no mode: the umask decides, as before
    assert oct((directory / "plain.txt").stat().st_mode & 0o777) == "0o644"
