"""Real restic repository servers for the tests, on 127.0.0.1 only (session fixtures).

- ``sftp_server``: Debian's sshd on a free 127.0.0.1 port, with a host key and a client key
  made for the session. restic runs ``ssh`` from PATH: the fixture's ``env`` puts a
  wrapper first on PATH that adds ``-F <its ssh config>`` (host alias, port, key,
  known_hosts), the way an operator's ~/.ssh/config would.
- ``rest_server``: ``rclone serve restic --addr 127.0.0.1:PORT DIR`` with a user and a
  password (an htpasswd file: no credential in any process's argv).

scripts/services installs restic, openssh-server and rclone (scripts/test calls it).
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SFTP_HOST = "kompose-test-sftp"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_listening(port: int, process: subprocess.Popen, what: str, log: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}: {log.read_text()[-2000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{what} does not listen on 127.0.0.1:{port} after {timeout} s")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _require(program: str) -> str:
    found = shutil.which(program) or (program if os.path.isabs(program) and os.access(program, os.X_OK) else None)
    if not found:
        pytest.fail(f"{program} is missing: run scripts/services (scripts/test does)", pytrace=False)
    return found


@dataclass
class SftpServer:
    port: int
    base: Path  # where repositories live on the "remote" side
    env: dict[str, str] = field(default_factory=dict)  # PATH with the ssh wrapper first

    def url(self, name: str) -> str:
        return f"sftp:{SFTP_HOST}:{self.base / name}"


@dataclass
class RestServer:
    port: int
    base: Path
    user: str
    password: str
    process: subprocess.Popen | None = None

    def url(self, name: str, credentials: bool = True) -> str:
        auth = f"{self.user}:{self.password}@" if credentials else ""
        return f"rest:http://{auth}127.0.0.1:{self.port}/{name}"


@pytest.fixture(scope="session")
def sftp_server(tmp_path_factory):
    _require("/usr/sbin/sshd")
    ssh = _require("ssh")
    keygen = _require("ssh-keygen")
    work = tmp_path_factory.mktemp("sftp")
    base = work / "repos"
    base.mkdir()
    for name in ("host_key", "client_key"):
        subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(work / name)], check=True)
    (work / "authorized_keys").write_text((work / "client_key.pub").read_text())
    port = free_port()
    (work / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {work / 'host_key'}\n"
        f"AuthorizedKeysFile {work / 'authorized_keys'}\nPidFile {work / 'sshd.pid'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
        "PermitRootLogin prohibit-password\nSubsystem sftp internal-sftp\nLogLevel ERROR\n"
    )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    log = work / "sshd.log"
    process = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(work / "sshd_config")],
                               stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        _wait_listening(port, process, "sshd", log)
        host_key = (work / "host_key.pub").read_text().split()
        (work / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
        user = os.environ.get("USER") or subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
        (work / "ssh_config").write_text(
            f"Host {SFTP_HOST}\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n"
            f"  IdentityFile {work / 'client_key'}\n  IdentitiesOnly yes\n  BatchMode yes\n"
            f"  UserKnownHostsFile {work / 'known_hosts'}\n  StrictHostKeyChecking yes\n  HostKeyAlias [127.0.0.1]:{port}\n"
        )
        bindir = work / "bin"
        bindir.mkdir()
        wrapper = bindir / "ssh"
        wrapper.write_text(f'#!/bin/sh\nexec {ssh} -F {work / "ssh_config"} "$@"\n')
        wrapper.chmod(0o755)
        probe = subprocess.run([str(wrapper), SFTP_HOST, "true"], capture_output=True, text=True, timeout=30)
        assert probe.returncode == 0, f"ssh to the test sshd failed: {probe.stderr}"
        yield SftpServer(port, base, {"PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"})
    finally:
        _stop(process)


@pytest.fixture(scope="session")
def rest_server(tmp_path_factory):
    rclone = _require("rclone")
    work = tmp_path_factory.mktemp("rest")
    base = work / "repos"
    base.mkdir()
    user, password = "kompose", "rest-" + secrets.token_hex(8)
    digest = base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()
    (work / "htpasswd").write_text(f"{user}:{{SHA}}{digest}\n")
    (work / "rclone.conf").write_text("")
    port = free_port()
    log = work / "rclone.log"
    process = subprocess.Popen(
        [rclone, "serve", "restic", "--addr", f"127.0.0.1:{port}", "--htpasswd", str(work / "htpasswd"), str(base)],
        stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        env={**os.environ, "RCLONE_CONFIG": str(work / "rclone.conf")},
    )
    try:
        _wait_listening(port, process, "rclone serve restic", log)
        yield RestServer(port, base, user, password, process)
    finally:
        _stop(process)
