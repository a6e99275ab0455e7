"""Layered environments: dotenv grammar, ${VAR} across layers, -e parsing, secret masking."""

from __future__ import annotations

from pathlib import Path

import pytest

from kompose import env as envmod
from kompose.errors import ConfigError
from tests.helpers import build_tree


def read(tmp_path: Path, text: str, base: dict[str, str] | None = None) -> dict[str, str]:
    path = tmp_path / ".env"
    path.write_text(text, encoding="utf-8")
    return envmod.read_env_file(path, base or {})


def test_dotenv_grammar(tmp_path: Path):
    values = read(
        tmp_path,
        "# a comment\n"
        "\n"
        "PLAIN=value\n"
        "export EXPORTED=yes\n"
        "SINGLE='literal ${PLAIN} $x \"q\"'\n"
        'DOUBLE="expanded ${PLAIN}, it\'s \\"quoted\\""\n'
        "UNQUOTED=${PLAIN}-x\n"
        "INLINE=abc # a comment after a space\n"
        "HASH=abc#part-of-the-value\n"
        'QUOTED_HASH="a # b"\n'
        'MULTI="line1\nline2"\n'
        "EMPTY=\n"
        "SPACED =  trimmed  \n",
    )
    assert values == {
        "PLAIN": "value",
        "EXPORTED": "yes",
        "SINGLE": 'literal ${PLAIN} $x "q"',
        "DOUBLE": 'expanded value, it\'s "quoted"',
        "UNQUOTED": "value-x",
        "INLINE": "abc",
        "HASH": "abc#part-of-the-value",
        "QUOTED_HASH": "a # b",
        "MULTI": "line1\nline2",
        "EMPTY": "",
        "SPACED": "trimmed",
    }


def test_references_resolve_against_lower_layers_and_earlier_keys(tmp_path: Path):
    values = read(
        tmp_path,
        "HOST=db\nURL=postgres://${USER}@${HOST}/${NAME:-fallback}\nMISSING=[${NOT_SET}]\n",
        base={"USER": "from-below", "HOST": "overridden-below"},
    )
    assert values == {"HOST": "db", "URL": "postgres://from-below@db/fallback", "MISSING": "[]"}


def test_layers_process_then_root_then_stack_then_overrides(tmp_path: Path):
    build_tree(tmp_path, {
        "root.env": "A=root\nB=root\nC=root\nROOT_ONLY=${FROM_PROCESS}\n",
        "stack.env": "B=stack\nC=stack\nCOMBINED=${A}+${B}\n",
    })
    env = envmod.layer(
        {"FROM_PROCESS": "proc", "A": "process"},
        [tmp_path / "root.env", tmp_path / "stack.env", tmp_path / "missing.env"],
        {"C": "cli", "NEW": "cli"},
    )
    assert (env["A"], env["B"], env["C"], env["NEW"]) == ("root", "stack", "cli", "cli")
    assert env["ROOT_ONLY"] == "proc"
    assert env["COMBINED"] == "root+stack"
    assert env["FROM_PROCESS"] == "proc"


@pytest.mark.parametrize(
    "text, line, words",
    [
        ("GOOD=1\nBAD LINE WITHOUT EQUALS\n", 2, "cannot parse"),
        ("GOOD=1\n\nKEY=\"unterminated\n", 3, "cannot parse"),
        ("A=1\nNOVALUE\n", 2, "no '='"),
        ("A=1\n# comment\n\n\n  NOVALUE\n", 5, "no '='"),
        ("A=1\n=no-key\n", 2, "cannot parse"),
    ],
)
def test_malformed_line_is_a_config_error_naming_file_and_line(tmp_path: Path, text: str, line: int, words: str):
    with pytest.raises(ConfigError) as caught:
        read(tmp_path, text)
    assert caught.value.message.startswith(f"{tmp_path / '.env'}:{line}: ")
    assert words in caught.value.message


def test_binary_files_are_config_errors(tmp_path: Path):
    path = tmp_path / ".env"
    path.write_bytes(b"A=1\nB=\xff\xfe\n")
    with pytest.raises(ConfigError, match=r"\.env:2: not UTF-8"):
        envmod.read_env_file(path, {})
    path.write_bytes(b"A=1\nB=x\x00y\n")
    with pytest.raises(ConfigError, match=r"\.env:2: contains a NUL byte"):
        envmod.read_env_file(path, {})


def test_dash_e_assignments():
    assert envmod.parse_assignments(["A=1", "B=x=y", "C=", "D_2=spaces are fine"]) == {
        "A": "1", "B": "x=y", "C": "", "D_2": "spaces are fine",
    }
    assert envmod.parse_assignments(["A=1", "A=2"]) == {"A": "2"}


@pytest.mark.parametrize("item", ["NOEQUALS", "=value", "1ABC=x", "A-B=x", "A B=x", ""])
def test_bad_dash_e_assignments(item: str):
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        envmod.parse_assignments([item])


def test_secret_keys_and_masking():
    env = {"DB_PASSWORD": "hunter22", "API_TOKEN": "tok-123", "x_secret_key": "s3", "PASSWORD_SHORT": "ab",
           "DB_USER": "hunter22-user", "NAME": "app"}
    assert [k for k in env if envmod.is_secret(k)] == ["DB_PASSWORD", "API_TOKEN", "x_secret_key", "PASSWORD_SHORT"]
    # too-short values are not masked in free text (it would blank out every line)
    assert envmod.secret_values(env) == ["hunter22", "tok-123"]
    text = "connect as hunter22-user with hunter22 and tok-123"
    assert envmod.mask_text(text, envmod.secret_values(env)) == "connect as ***-user with *** and ***"
    assert envmod.masked_env(env) == {"DB_PASSWORD": "***", "API_TOKEN": "***", "x_secret_key": "***",
                                      "PASSWORD_SHORT": "***", "DB_USER": "hunter22-user", "NAME": "app"}


# -- the fast lexer for simple lines must mean exactly what dotenv's parser means

_PIECES = ["", " ", "\t", "export ", "export\t", "export", "KEY", "k.e_y", "my-key", "9x", "=", "= ", "==",
           "'", '"', "\\", "#", " #", " # c", "#c", "$", "${A}", "$A", "{", "}", "val", "v al", "it's", 'a"b',
           "ü", "\u00a0", "\x0c", "\x0b", "'lit'", '"dq"', "'a b'", '"a b"', "\\n", "\r"]


def _random_lines(rng, count: int) -> list[str]:
    lines = []
    for _ in range(count):
        if rng.random() < 0.5:  # mostly near-simple shapes, so the fast path is exercised often
            lines.append(rng.choice(["", " ", "export ", "  "]) + rng.choice(["KEY", "A_1", "x.y", "export"])
                         + rng.choice(["=", " =", "= ", "=\t"]) + rng.choice(_PIECES) + rng.choice(_PIECES[:6] + [" # c", "#c", "'", '"']))
        else:
            lines.append("".join(rng.choice(_PIECES) for _ in range(rng.randint(0, 6))))
    return lines


def test_the_fast_lexer_agrees_with_dotenv_on_every_line_it_takes(tmp_path: Path):
    import random

    rng = random.Random(20261123)
    taken = 0
    for _ in range(20000):
        text = "\n".join(_random_lines(rng, rng.randint(1, 3)))
        fast = envmod._simple_bindings(text)
        if fast is None:
            continue
        taken += 1
        slow = list(envmod._dotenv_bindings(tmp_path / ".env", text))  # must not raise either
        assert fast == slow, repr(text)
    assert taken > 3000  # the comparison covered many files the fast path read


def test_typical_env_files_take_the_fast_path():
    text = ("# site 7\nDB_HOST=db\nDB_NAME=site007\nDB_PASSWORD='pw-1f2e'\nAPP_URL=\"https://site007.example.org\"\n"
            "export CACHE_DIR=/var/cache/site007\nLOG_LEVEL=info  # inline comment\nEMPTY=\nREF=${DB_NAME}_x\n")
    assert envmod._simple_bindings(text) == [
        ("DB_HOST", "db", False), ("DB_NAME", "site007", False), ("DB_PASSWORD", "pw-1f2e", True),
        ("APP_URL", "https://site007.example.org", False), ("CACHE_DIR", "/var/cache/site007", False),
        ("LOG_LEVEL", "info", False), ("EMPTY", "", False), ("REF", "${DB_NAME}_x", False),
    ]
