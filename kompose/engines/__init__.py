"""Database engines behind one interface (engines/base.py): each is a package here exposing ENGINE.
A stack's engine is DB_ENGINE in its layered env (default postgres). A new engine is one package
plus one line in ENGINES."""

from __future__ import annotations

import importlib
from typing import Mapping

from kompose.engines.base import Engine
from kompose.errors import ConfigError

# DB_ENGINE value -> the package that implements it
ENGINES: dict[str, str] = {
    "postgres": "kompose.engines.postgres",
    "mariadb": "kompose.engines.mariadb",
    "mysql": "kompose.engines.mariadb.mysql",
}
ALIASES = {"postgresql": "postgres", "pg": "postgres"}


def engine_named(name: str) -> Engine:
    key = ALIASES.get(name.lower(), name.lower())
    if key not in ENGINES:
        raise ConfigError(f"DB_ENGINE={name!r}: choose one of {', '.join(sorted(ENGINES))}")
    return importlib.import_module(ENGINES[key]).ENGINE


def engine_for(env: Mapping[str, str]) -> Engine:
    """The stack's engine: DB_ENGINE, else PostgreSQL."""
    return engine_named(env.get("DB_ENGINE", "") or "postgres")


def has_database(env: Mapping[str, str]) -> bool:
    """Whether a stack has a database kompose backs up (DB_NAME set), whatever its engine."""
    return bool(env.get("DB_NAME"))
