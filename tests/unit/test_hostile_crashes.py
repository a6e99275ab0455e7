"""Issue 16, points 8 and 9 without a database: odd bytes and odd files give one line, never a
traceback or a hang; a hook whose hooks.sh exits while sourced did not run. Real CLI, real
bash, real sockets."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kompose.errors import HookError
from kompose.hooks import probes
from tests.helpers import build_tree, run_kompose

DUMP = "bi_20240101_000000.sql"
PLAIN = "--\n-- PostgreSQL database dump\n--\nSELECT 1;\n--\n-- PostgreSQL database dump complete\n--\n"


def _root(tmp_path: Path, **extra: str | bytes) -> Path:
    root = tmp_path / "root"
    build_tree(root, {"app/compose.yaml": "services: {}",
                      "app/.env": 'DB_NAME=bi\nDB_CONTAINER=kompose-none\nKOMPOSE_SCHEDULE_DB_EXPORT="0 3 * * *"\n',
                      f"app/{DUMP}": PLAIN, **extra})
    return root


def _no_traceback(result, codes=(0, 1, 2)) -> None:
    assert "Traceback" not in result.output, result.output
    assert result.code in codes, result


COMMANDS = [("status",), ("cron", "--check", "--cron-file", "{cron}"), ("app", "db:list"), ("app", "db:cleanup"),
            ("app", "db:verify"), ("app", "db:list", "--json"), ("--list",)]


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_a_manifest_that_is_not_utf8_is_one_line(tmp_path: Path, args) -> None:
    root = _root(tmp_path, **{f"app/{DUMP}.json": b'{"file": "\xff\xfe latin-1 \xe9"}'})
    args = [a.replace("{cron}", str(tmp_path / "cron")) for a in args]
    result = run_kompose(*args, root=root, timeout=30)
    _no_traceback(result)
    if args[-1] in ("db:list", "status"):
        assert "not UTF-8" in result.output


@pytest.mark.parametrize("args", COMMANDS + [("app", "hooks:check"), ("app", "db:import", "--dry-run"),
                                            ("app", "db:import", "--dry-run", "bi_20240102_000000.sql"),
                                            ("app", "db:import", "bi_20240102_000000.sql")], ids=" ".join)
def test_fifos_in_a_stack_directory_never_hang(tmp_path: Path, args) -> None:
    root = _root(tmp_path)
    app = root / "app"
    for name in ("bi_20240102_000000.sql", f"{DUMP}.json", "bi_20240102_000000.sql.json", "sql/pre_db_import/a.sql"):
        (app / name).parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(app / name)
    args = [a.replace("{cron}", str(tmp_path / "cron")) for a in args]
    started = time.monotonic()
    result = run_kompose(*args, root=root, timeout=20)  # raises on a hang
    assert time.monotonic() - started < 20
    _no_traceback(result)


def test_a_fifo_named_as_the_dump_is_one_error_line(tmp_path: Path) -> None:
    root = _root(tmp_path)
    os.mkfifo(root / "app" / "bi_20240102_000000.sql")
    result = run_kompose("app", "db:import", "bi_20240102_000000.sql", root=root, timeout=20)
    assert result.code == 1 and "not a regular file" in result.output, result


def test_a_fifo_for_hooks_sh_is_a_config_error(tmp_path: Path) -> None:
    root = _root(tmp_path)
    os.mkfifo(root / "app" / "hooks.sh")
    result = run_kompose("app", "ps", root=root, timeout=20)
    assert result.code == 2 and "not a regular file" in result.stderr, result
    check = run_kompose("app", "hooks:check", root=root, timeout=20)
    assert check.code == 1 and "not a regular file" in check.output, check


def test_sql_hook_that_is_not_utf8_is_flagged_and_refused(tmp_path: Path) -> None:
    root = _root(tmp_path, **{"app/sql/pre_swap/10-check.sql": b"SELECT 'caf\xe9';\n"})
    check = run_kompose("app", "hooks:check", root=root, timeout=20)
    assert check.code == 1 and "not UTF-8" in check.output and "10-check.sql" in check.output, check
    (root / "app" / "sql" / "pre_ps").mkdir()
    (root / "app" / "sql" / "pre_ps" / "a.sql").write_bytes(b"-- r\xe9sum\xe9\nSELECT 1;\n")
    result = run_kompose("app", "ps", root=root, timeout=20)
    _no_traceback(result, (2,))
    assert "not UTF-8 text (line 1)" in result.stderr, result


def test_hooks_sh_ending_in_exit_0_runs_no_hook_and_fails(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    root = _root(tmp_path, **{"app/hooks.sh": f"hook_pre_ps() {{ touch {marker}; }}\nexit 0\n"})
    result = run_kompose("app", "ps", root=root, timeout=30)
    assert result.code == 1, result
    assert "hook_pre_ps did not run" in result.output
    assert not marker.exists()
    check = run_kompose("app", "hooks:check", root=root, timeout=20)
    assert check.code == 1 and "hooks.sh:2: exit outside a function" in check.output, check


def test_a_hook_that_exits_0_itself_did_run(tmp_path: Path) -> None:
    root = _root(tmp_path, **{"app/hooks.sh": "hook_pre_ps() {\n  echo ran\n  exit 0\n}\n"})
    result = run_kompose("app", "ps", root=root, timeout=30,
                         env={"PATH": f"{tmp_path}/bin:" + os.environ["PATH"]})
    assert "did not run" not in result.output
    check = run_kompose("app", "hooks:check", root=root, timeout=20)
    assert "exit outside a function" not in check.output


# ---------------------------------------------------------------- HTTP hooks


def _server(payload: bytes) -> int:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)

    def serve() -> None:
        while True:
            conn, _ = listener.accept()
            try:
                conn.recv(65536)
                conn.sendall(payload)
                time.sleep(0.05)
            except OSError:
                pass
            finally:
                conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1]


@pytest.mark.parametrize("payload, words", [
    (b"SSH-2.0-OpenSSH_9.2p1 Debian\r\n", "not HTTP"),
    (b"220 smtp.example ESMTP\r\n", "not HTTP"),
    (b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n", "too long"),
    (b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%d: y\r\n" % n for n in range(500)) + b"\r\n", "headers"),
    (b"\x00\xff\xfe binary garbage\r\n\r\n", "not HTTP"),
])
def test_http_hook_against_something_that_is_not_http(payload: bytes, words: str) -> None:
    port = _server(payload)
    with pytest.raises(HookError) as caught:
        probes.http_request("GET", f"http://127.0.0.1:{port}/", None, "", 5, "http hook X")
    assert words in caught.value.message and "\n" not in caught.value.message


@pytest.mark.parametrize("url, words", [
    ("http://127.0.0.1:abc/", "not a valid URL"),
    ("http://[::1/health", "not a valid URL"),
    ("http://a..b/", "empty label"),
    ("http://[zz::1]:80/", "not a valid URL"),
    ("http://host:99999/", "not a valid URL"),
])
def test_http_hook_urls_that_cannot_be_requested_are_config_errors(tmp_path: Path, url: str, words: str) -> None:
    root = _root(tmp_path)
    (root / "app" / ".env").write_text(f"KOMPOSE_HOOK_PRE_PS_HTTP=GET {url}\n")
    result = run_kompose("app", "ps", root=root, timeout=20)
    assert result.code == 2, result
    assert len(result.stderr.strip().splitlines()) == 1 and words in result.stderr, result
    check = run_kompose("app", "hooks:check", root=root, timeout=20)
    assert check.code == 1 and words in check.output and "Traceback" not in check.output


def test_tcp_hook_with_an_empty_label() -> None:
    with pytest.raises(HookError, match="cannot resolve"):
        probes.tcp_open("a..b", 80, 1, "tcp hook X")


# ---------------------------------------------------------------- Ctrl-C while kompose starts

_INTERRUPT_WHILE_IMPORTING = """
import importlib.abc, os, signal, sys
MODULE = sys.argv[1]
class Interrupt(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == MODULE:
            os.kill(os.getpid(), signal.SIGINT)
        return None
sys.meta_path.insert(0, Interrupt())
sys.argv = ["kompose", "--root", sys.argv[2], "--list"]
from kompose.cli import main
main()
"""


@pytest.mark.parametrize("module", ["typer", "click", "kompose.cli.app", "kompose.errors", "rich", "kompose.stacks"])
def test_ctrl_c_while_the_cli_loads_is_one_line(tmp_path: Path, module: str) -> None:
    result = subprocess.run([sys.executable, "-c", _INTERRUPT_WHILE_IMPORTING, module, str(tmp_path)],
                            capture_output=True, text=True, timeout=30)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode in (130, 0), (result.returncode, result.stderr)
    if result.returncode == 130:
        assert result.stderr.strip().splitlines() == ["error: interrupted"]


def test_ctrl_c_at_random_moments_never_shows_a_traceback_of_kompose(tmp_path: Path) -> None:
    """SIGINT at 40 moments of the first ~200 ms: no traceback from kompose's code or its
    libraries (the interpreter's own start-up, before any kompose code, is Python's to report)."""
    root = _root(tmp_path)
    ours = (f"{os.sep}kompose{os.sep}", f"{os.sep}typer{os.sep}", f"{os.sep}click{os.sep}", f"{os.sep}rich{os.sep}")
    for number in range(40):
        process = subprocess.Popen([sys.executable, "-m", "kompose", "--root", str(root), "app", "db:list"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(number * 0.005)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
        frames = [line for line in stderr.splitlines() if line.lstrip().startswith('File "')]
        assert not any(any(part in frame for part in ours) and "site-packages/__editable__" not in frame
                       for frame in frames), stderr
