"""Finding hook functions in hooks.sh without running it: every way bash defines a function."""

from __future__ import annotations

import subprocess
from pathlib import Path

from kompose.hooks.points import check_syntax, find_functions
from kompose.errors import ConfigError

import pytest

HOOKS = r"""
#!/usr/bin/env bash
helper() { echo "not a hook"; }
hook_braces() {
    echo one
}
hook_tight(){ echo two; }
hook_spaced ( ) {
    :
}
function hook_keyword {
    :
}
function hook_keyword_parens() {
    :
}
function hook_brace_next_line
{
    :
}
hook_parens_brace_next_line()
{
    :
}
hook_comment_then_brace()  # the body follows
{
    :
}
hook_subshell() (
    cd /tmp && echo in a subshell
)
    hook_indented() {
        :
    }
hook_calls_others() {
    hook_only_called
    hook_called_with_args "$@"
    hook_called_with_brace {
    }
    echo "hook_in_a_string() {"
}
# hook_commented_out() {
#   :
# }
hook_braces() { echo redefined; }
"""

DEFINED = [
    "hook_braces", "hook_tight", "hook_spaced", "hook_keyword", "hook_keyword_parens", "hook_brace_next_line",
    "hook_parens_brace_next_line", "hook_comment_then_brace", "hook_subshell", "hook_indented", "hook_calls_others",
]


def bash_functions(path: Path) -> list[str]:
    """What bash itself defines when it sources the file: the reference."""
    out = subprocess.run(["bash", "-c", '. "$0" >/dev/null; declare -F', str(path)], capture_output=True,
                         text=True, check=True).stdout
    return sorted(line.split()[-1] for line in out.splitlines() if line.split()[-1].startswith("hook_"))


def test_finds_exactly_the_functions_bash_defines(tmp_path: Path):
    path = tmp_path / "hooks.sh"
    path.write_text(HOOKS)
    found = find_functions(path)
    assert sorted(found) == bash_functions(path) == sorted(DEFINED)
    assert found == DEFINED  # file order, each once


def test_crlf_line_endings(tmp_path: Path):
    path = tmp_path / "hooks.sh"
    path.write_bytes(b"hook_a()\r\n{\r\n  :\r\n}\r\nhook_b() {\r\n:\r\n}\r\n")
    assert find_functions(path) == ["hook_a", "hook_b"]


def test_missing_file_has_no_hooks(tmp_path: Path):
    assert find_functions(tmp_path / "hooks.sh") == []


def test_reading_never_runs_the_file(tmp_path: Path):
    path = tmp_path / "hooks.sh"
    marker = tmp_path / "ran"
    path.write_text(f"touch {marker}\nhook_x() {{ :; }}\n")
    assert find_functions(path) == ["hook_x"]
    check_syntax(path)
    assert not marker.exists()


def test_syntax_error_names_the_file(tmp_path: Path):
    path = tmp_path / "hooks.sh"
    path.write_text("hook_x() {\n  if true; then echo\n}\n")
    with pytest.raises(ConfigError) as caught:
        check_syntax(path)
    assert str(path) in caught.value.message and "syntax error" in caught.value.message
