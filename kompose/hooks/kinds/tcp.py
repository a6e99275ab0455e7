"""tcp hooks: ``KOMPOSE_HOOK_<POINT>_TCP=<host>:<port>`` — the port accepts connections within the timeout."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

from kompose.errors import ConfigError
from kompose.plan.steps import HookStep


KIND = "tcp"


@dataclass(frozen=True)
class TcpHook(HookStep):
    """A declarative check that host:port accepts TCP connections within the timeout."""

    kind = KIND
    point: str
    key: str
    host: str
    port: int
    timeout: float

    def what(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"tcp {host}:{self.port} open"

    def label(self) -> str:
        return self.key


STEP = TcpHook


def parse(key: str, value: str, fields: tuple[str, ...]) -> dict:
    """The definition's fields (for Declared), or ConfigError naming the key."""
    text = value.strip()
    match = re.fullmatch(r"\[(?P<v6>[^\]]+)\]:(?P<port>\d+)|(?P<host>[^\s:\[\]]+):(?P<port2>\d+)", text)
    if not match:
        raise ConfigError(f"{key}: expected <host>:<port>, got {value!r}")
    host = match.group("v6") or match.group("host")
    port = int(match.group("port") or match.group("port2"))
    if not 0 < port < 65536:
        raise ConfigError(f"{key}: port {port} is out of range")
    return {"host": host, "port": port}


def step(point: str, item, timeout: float, extra: tuple[tuple[str, str], ...]) -> TcpHook:
    return TcpHook(point, item.key, item.host, item.port, timeout)


def run(runner, step: TcpHook, state: Mapping[str, str]) -> None:
    from kompose.hooks import probes  # socket work only for the runs with such hooks

    runner.detail(f"hook {step.key}: {step.host}:{step.port}")
    took = probes.tcp_open(step.host, step.port, step.timeout, f"tcp hook {step.key} ({step.host}:{step.port})")
    runner.sink(f"open after {took:.1f} s")
