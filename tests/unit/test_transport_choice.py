"""Which export transport kompose picks, and why (pure decisions; the probe is passed in)."""

from __future__ import annotations

import pytest

from kompose.docker import transport
from kompose.errors import UsageError


def _sees(answer: bool, why: str = "probe"):
    calls = []

    def probe(path: str):
        calls.append(path)
        return answer, why

    probe.calls = calls
    return probe


def test_auto_on_a_local_engine_sharing_our_files_is_direct(tmp_path):
    probe = _sees(True, "it shares this host's files")
    choice = transport.choose("auto", {}, tmp_path, probe)
    assert choice.name == "direct"
    assert choice.reason.startswith("local engine (unix:///var/run/docker.sock), it shares this host's files")
    assert probe.calls == ["/var/run/docker.sock"]


def test_auto_follows_a_unix_docker_host(tmp_path):
    probe = _sees(True)
    assert transport.choose("auto", {"DOCKER_HOST": "unix:///run/user/1000/docker.sock"}, tmp_path, probe).name == "direct"
    assert probe.calls == ["/run/user/1000/docker.sock"]


@pytest.mark.parametrize("host", ["tcp://10.0.0.5:2376", "ssh://backup@db-host"])
def test_auto_on_a_remote_engine_is_exec_and_direct_is_refused(tmp_path, host):
    probe = _sees(True)
    choice = transport.choose("auto", {"DOCKER_HOST": host}, tmp_path, probe)
    assert choice.name == "exec" and f"DOCKER_HOST={host} is a remote engine" in choice.reason
    with pytest.raises(UsageError, match="needs a local engine"):
        transport.choose("direct", {"DOCKER_HOST": host}, tmp_path, probe)
    assert probe.calls == []


def test_auto_is_exec_when_the_engine_cannot_see_our_files(tmp_path):
    choice = transport.choose("auto", {}, tmp_path, _sees(False, "the engine runs in another mount namespace"))
    assert choice.name == "exec"
    assert choice.reason.startswith("the engine runs in another mount namespace")


def test_forcing_wins_where_locality_cannot_be_proven(tmp_path):
    assert transport.choose("direct", {}, tmp_path, _sees(False)).name == "direct"
    assert transport.choose("exec", {}, tmp_path, _sees(True)) == transport.Choice("exec", "forced by --transport exec", True)


def test_unknown_transport_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="choose one of auto, exec, direct"):
        transport.choose("scp", {}, tmp_path, _sees(True))


def test_the_probe_says_no_for_a_socket_nobody_serves(tmp_path):
    shared, why = transport.engine_sees_our_files(str(tmp_path / "none.sock"))
    assert not shared and "cannot connect" in why


def test_the_probe_recognises_a_server_in_our_own_namespaces(tmp_path):
    import socket

    path = str(tmp_path / "engine.sock")
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(path)
        server.listen(1)
        assert transport.engine_sees_our_files(path) == (True, "it shares this host's files")


def test_helper_runs_as_kompose_user_or_as_root_of_a_rootless_engine():
    assert transport.helper_user(False, 1000, 1001) == "1000:1001"
    assert transport.helper_user(True, 1000, 1001) == "0:0"


def test_auto_streams_a_small_database_and_starts_a_helper_for_a_big_one(tmp_path):
    """The helper container's start costs more than the exec stream of a small dump: auto judges
    by the stack's previous dump; --transport direct still forces the helper."""
    probe = _sees(True)
    small = transport.choose("auto", {}, tmp_path, probe, previous_size=3 << 20)
    assert small.name == "exec" and "the last dump was 3.1 MB" in small.reason
    assert probe.calls == []  # decided without asking the engine
    assert transport.choose("auto", {}, tmp_path, probe, previous_size=transport.SMALL_DUMP).name == "direct"
    assert transport.choose("auto", {}, tmp_path, probe, previous_size=None).name == "direct"
    assert transport.choose("direct", {}, tmp_path, probe, previous_size=1).name == "direct"
