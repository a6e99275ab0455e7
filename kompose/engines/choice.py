"""Which engine a stack's database runs on: DB_ENGINE in its layered env, else what its
database container says (its image and environment), else PostgreSQL."""

from __future__ import annotations

from typing import Mapping

from kompose.errors import ConfigError

ENGINES = ("postgres", "mariadb", "mysql")
# what people write for them
_ALIASES = {"postgresql": "postgres", "pg": "postgres", "mysql": "mysql", "mariadb": "mariadb"}


def declared(env: Mapping[str, str]) -> str:
    """The engine DB_ENGINE names ('' when unset). Raises ConfigError for an unknown one."""
    value = env.get("DB_ENGINE", "").strip().lower()
    if not value:
        return ""
    value = _ALIASES.get(value, value)
    if value not in ENGINES:
        raise ConfigError(f"DB_ENGINE={env.get('DB_ENGINE')!r}: choose one of {', '.join(ENGINES)}")
    return value


def is_mariadb(engine: str) -> bool:
    """MariaDB and MySQL share the engine (their tools differ in name only)."""
    return engine in ("mariadb", "mysql")
