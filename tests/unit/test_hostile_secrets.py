"""Issue 16, points 5 and 6: a .env line that cannot be parsed never shows its value, and every
form a secret takes in kompose's own output is masked."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from kompose import env as envmod
from kompose.errors import ConfigError
from kompose.host.processes import MAX_LINE, _pump, cut_point

PEM = ("-----BEGIN OPENSSH PRIVATE KEY-----\n"
       "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
       "QyNTUxOQAAACDxlPc3JAh4V1fMZ8zw4nB0kZ4q9v0Qe3yHc0Rk5Zl8cAAAAJjN2cXkzdnF\n"
       "-----END OPENSSH PRIVATE KEY-----")


@pytest.mark.parametrize("line", [
    'DB_PASSWORD="s3cr3t-never-closed\n',
    "DB_PASSWORD='s3cr3t-never-closed\n",
    'export DB_PASSWORD = "s3cr3t-never-closed\n',
    "s3cr3t-never-closed x\n",
])
def test_unparsable_line_names_file_line_and_key_never_the_value(tmp_path: Path, line: str):
    path = tmp_path / ".env"
    path.write_text("A=1\n" + line, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        envmod.read_env_file(path, {})
    message = caught.value.message
    assert message.startswith(f"{path}:2: ")
    assert "s3cr3t" not in message
    if "DB_PASSWORD" in line:
        assert "DB_PASSWORD" in message


def test_a_word_without_equals_that_is_no_key_is_not_shown(tmp_path: Path):
    path = tmp_path / ".env"
    path.write_text("A=1\nB='x'\ns3cr3t/word+x\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        envmod.read_env_file(path, {})
    assert "s3cr3t" not in caught.value.message


@pytest.mark.parametrize("value", ["pa$word'with\"quotes\\and$$dollars", "plain-secret-1234", "ünïcödé-sécret",
                                   "tab\there", PEM])
def test_every_form_of_a_secret_is_masked(value: str):
    secrets = envmod.secret_values({"DB_PASSWORD": value})
    forms = [value, value.replace("$", "$$"), shlex.quote(value), json.dumps(value), json.dumps(value, ensure_ascii=False),
             repr(value), repr({"DB_PASSWORD": value}), shlex.join(["psql", f"--password={value}"])]
    for form in forms:
        masked = envmod.mask_text(f"before {form} after", secrets)
        assert masked.startswith("before ") and masked.endswith(" after")
        for piece in [value] + value.splitlines():
            if len(piece.strip()) >= envmod.MIN_MASKED_LENGTH:
                assert piece.strip() not in masked, (form, masked)


def test_every_line_of_a_multi_line_secret_is_masked_line_by_line():
    secrets = envmod.secret_values({"SSH_PRIVATE_KEY": PEM})
    for line in PEM.splitlines():
        assert envmod.mask_text("    | " + line, secrets) == "    | ***"


def test_the_line_cut_never_splits_a_secret():
    secret = "CANARY-" + "x" * 40
    secrets = [s.encode() for s in envmod.secret_values({"DB_PASSWORD": secret})]
    for offset in range(MAX_LINE - len(secret) - 2, MAX_LINE + 2):
        data = b"a" * offset + secret.encode() + b"b" * 20000 + b"\n"
        cut = cut_point(data, MAX_LINE, secrets)
        assert cut <= MAX_LINE
        piece, rest = data[:cut], data[cut:]
        assert secret.encode() in piece or secret.encode() in rest


def test_streamed_long_lines_are_masked_whole(tmp_path: Path):
    import os

    secret = "CANARY-" + "y" * 40
    secrets = [s.encode() for s in envmod.secret_values({"DB_PASSWORD": secret})]
    read, write = os.pipe()
    payload = b"a" * (MAX_LINE - 10) + secret.encode() + b"c" * (3 * MAX_LINE) + b"\n"
    os.write(write, payload) if len(payload) < 65536 else None
    os.close(write)
    lines: list[str] = []
    with os.fdopen(read, "rb") as stream:
        _pump(stream, lines.append, None, secrets)
    assert "".join(lines).encode() == payload.rstrip(b"\n")
    masked = [envmod.mask_text(line, envmod.secret_values({"DB_PASSWORD": secret})) for line in lines]
    assert not any("CANARY" in line for line in masked)
