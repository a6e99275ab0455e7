"""Every hook a stack (or the root) defines — bash functions, declarative .env hooks, SQL directories —
and the plan steps for one hook point, in the fixed order of the kinds' registry (hooks/kinds). Reads files; runs nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from kompose.hooks import declarative
from kompose.hooks import points as hooks
from kompose.engines import engine_for
from kompose.hooks.kinds import sql as sqlhooks
from kompose.hooks.declarative import Declared
from kompose.env import read_env_file
from kompose.errors import ConfigError, NoDatabaseError
from kompose.hooks.kinds import DECLARED, ORDER
from kompose.hooks.kinds.bash import Hook
from kompose.hooks.kinds.sql import SqlHook
from kompose.plan.steps import Container, Step
from kompose.hooks.kinds.sql import SqlDir


@dataclass
class HookSources:
    """What one place (a stack directory, or the root for run-wide hooks) defines."""

    directory: Path
    hooks_file: Path | None
    functions: list[str] = field(default_factory=list)
    declared: list[Declared] = field(default_factory=list)
    sql: dict[str, SqlDir] = field(default_factory=dict)
    run_wide: bool = False

    def points(self) -> list[str]:
        """Every hook point something is attached to, in the order points can run."""
        found = {f[len("hook_"):] for f in self.functions if hooks.is_point(f[len("hook_"):])}
        if self.run_wide:
            found &= set(hooks.RUN_POINTS)
        found |= {d.point for d in self.declared} | set(self.sql)
        return hooks.sort_points(found)


def own_env_values(env_file: Path, base: Mapping[str, str]) -> dict[str, str]:
    """The keys one .env file sets (``${VAR}`` resolved against ``base``); {} when there is none."""
    return read_env_file(env_file, base) if env_file.is_file() else {}


def gather(
    directory: Path, env_values: Mapping[str, str], run_wide: bool = False
) -> tuple[HookSources, list[str]]:
    """The hooks of ``directory`` (its hooks.sh and sql/, and the declarative keys among
    ``env_values``, the keys of its own .env), and every problem found on the way."""
    hooks_file = directory / "hooks.sh"
    problems: list[str] = []
    declared, declared_problems = declarative.parse(env_values, str(directory / ".env"), run_wide)
    problems += declared_problems
    sql: dict[str, SqlDir] = {}
    if not run_wide:
        sql, sql_problems = sqlhooks.find(directory)
        problems += sql_problems
    sources = HookSources(
        directory=directory,
        hooks_file=hooks_file if hooks_file.is_file() else None,
        functions=hooks.find_functions(hooks_file),
        declared=declared,
        sql=sql,
        run_wide=run_wide,
    )
    return sources, problems


def gather_strict(directory: Path, env_values: Mapping[str, str], run_wide: bool = False) -> HookSources:
    """Like gather(), but raises ConfigError for a broken definition (a stray file in a SQL
    directory is only worth a word from hooks:check)."""
    sources, problems = gather(directory, env_values, run_wide)
    serious = [p for p in problems if ": ignored (not .sql)" not in p]
    if serious:
        raise ConfigError(serious[0])
    return sources


class HookFinder:
    """Plan steps for the hooks of one place at one point.

    ``env`` is the layered environment (for time limits). SQL hooks need the stack's
    database: ``conn`` (else made from ``env`` when a SQL hook exists) and ``container``
    (None: found when the hook runs).
    """

    def __init__(
        self,
        sources: HookSources,
        env: Mapping[str, str],
        name: str,
        command: str,
        conn=None,
        container: Container | None = None,
    ):
        self.sources = sources
        self.env = env
        self.name = name
        self.command = command
        self.conn = conn
        self.container = container

    def steps(
        self,
        point: str,
        *args: str,
        env: Mapping[str, str] | None = None,
        database: str | None = None,
        dump_file: str = "",
    ) -> list[Step]:
        """Every hook at ``point`` in kind order (tcp, bash, sql, exec, http); [] when there is none.

        ``args`` go to the bash function, ``env`` to bash and exec hooks; ``database`` is
        where SQL hooks run (default: the stack's database), ``dump_file`` their :'dump_file'.
        Raises ConfigError for a bad time limit or SQL hooks without a database.
        """
        # the action may have named the dump for every hook of the stack (KOMPOSE_DUMP_FILE)
        dump_file = dump_file or self.env.get("KOMPOSE_DUMP_FILE", "")
        extra = tuple({**({"KOMPOSE_DUMP_FILE": dump_file} if dump_file else {}), **(env or {})}.items())
        timeout = hooks.timeout(self.env, point)
        found: dict[str, list[Step]] = {kind: [] for kind in ORDER}
        function = hooks.function_name(point)
        if function in self.sources.functions and (not self.sources.run_wide or point in hooks.RUN_POINTS):
            found["bash"].append(Hook(point, function, tuple(str(a) for a in args), extra, timeout))
        for item in self.sources.declared:
            if item.point != point:
                continue
            own = hooks.timeout(self.env, point, item.timeout) if item.timeout else timeout
            found[item.kind].append(DECLARED[item.kind].step(point, item, own, extra))
        sql_dir = self.sources.sql.get(point)
        if sql_dir:
            found["sql"].append(self._sql_step(sql_dir, database, dump_file, timeout))
        return [step for kind in ORDER for step in found[kind]]

    def _sql_step(self, sql_dir: SqlDir, database: str | None, dump_file: str, timeout: float) -> SqlHook:
        if self.conn is None:
            try:
                self.conn = engine_for(self.env).connection(self.env, self.name)
            except NoDatabaseError:
                raise ConfigError(
                    f"{sql_dir.directory}: SQL hooks need the stack's database, but DB_NAME is not set"
                ) from None
        target = database or self.conn.database
        variables = (
            ("stack", self.name),
            ("command", self.command),
            ("hook", sql_dir.point),
            ("database", target),
            ("dump_file", dump_file),
        )
        engine = engine_for(self.env)
        argv = engine.hook_argv(self.conn, target, variables, sql_dir.atomic)
        return SqlHook(
            sql_dir.point, self.container, target, sql_dir.files, sql_dir.atomic, variables, self.conn.exec_env(),
            tuple(argv), timeout, engine.name,
        )
