"""The test harness itself: tree building, CLI results, SQL quoting (no Docker)."""

from pathlib import Path

from tests.helpers import Result, build_tree, quote_ident, wait_for


def test_build_tree_dedents_and_makes_parents(tmp_path: Path) -> None:
    build_tree(
        tmp_path,
        {
            "blog/compose.yaml": """
                services:
                  app:
                    image: x
            """,
            "blog/hooks.sh": "hook_pre_up() { :; }",
            "blog/raw.bin": b"\x00\x01",
        },
    )
    assert (tmp_path / "blog/compose.yaml").read_text() == "services:\n  app:\n    image: x\n"
    assert (tmp_path / "blog/hooks.sh").read_text() == "hook_pre_up() { :; }\n"
    assert (tmp_path / "blog/hooks.sh").stat().st_mode & 0o111
    assert (tmp_path / "blog/raw.bin").read_bytes() == b"\x00\x01"


def test_result_last_line_and_output() -> None:
    result = Result(["kompose"], 1, "== a ==\n1 succeeded, 1 failed of 2 stacks\n\n", "warn\n", 0.1)
    assert result.last_line == "1 succeeded, 1 failed of 2 stacks"
    assert result.output.endswith("warn\n")
    assert "exit code 1" in str(result)


def test_quote_ident() -> None:
    assert quote_ident("public.t") == '"public"."t"'
    assert quote_ident('we"ird') == '"we""ird"'


def test_wait_for_returns_value_and_times_out() -> None:
    assert wait_for(lambda: 42, timeout=1) == 42
    try:
        wait_for(lambda: None, timeout=0.2, interval=0.05, message="nothing")
    except AssertionError as exc:
        assert "nothing" in str(exc)
    else:
        raise AssertionError("wait_for did not time out")
