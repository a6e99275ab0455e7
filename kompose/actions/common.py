"""What every action needs: the stack's hook environment and its hook steps."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from kompose.hooks import points as hooks
from kompose.hooks import sources as hookset
from kompose.context import Context
from kompose.docker import containers
from kompose.dumps import files as dumps
from kompose.engines.base import Engine
from kompose.plan.steps import CheckServerVersion, Container, Note, Sql
from kompose.plan.model import StackPlan
from kompose.stacks import Stack


def new_stack_plan(ctx: Context, stack: Stack, command: str, lock: bool = False) -> StackPlan:
    """A StackPlan with the stack's hook environment and post policy; checks hooks.sh syntax first."""
    hooks.check_syntax(stack.hooks_file)
    env = ctx.stack_env(stack)
    root = str(_resolved(ctx.root))
    directory = stack.dir.resolve()
    env.update(
        {
            "SCRIPT_DIR": root,
            "stack": stack.name,
            "KOMPOSE_ROOT": root,
            "KOMPOSE_STACK": stack.name,
            "KOMPOSE_STACK_DIR": str(directory),
            "KOMPOSE_COMMAND": command,
            "KOMPOSE_DRY_RUN": "1" if ctx.dry_run else "0",
        }
    )
    hooks_file = stack.hooks_file.resolve() if stack.hooks_file.is_file() else None
    if hooks_file:
        hooks.timeout(env)  # a bad KOMPOSE_HOOK_TIMEOUT stops the run before anything runs
    dump_dir = dumps.dump_dir(directory, stack.name, env, ctx.root)
    stack_plan = StackPlan(
        stack=stack.name,
        directory=directory,
        dump_dir=dump_dir,
        command=command,
        env=env,
        hooks_file=hooks_file,
        lock=lock,
        post_policy=hooks.post_policy(env),
    )
    if dump_dir != directory and command.startswith("db:"):
        missing = "" if dump_dir.is_dir() else "; created (mode 0700) when the run starts"
        stack_plan.steps.append(Note(f"dumps, manifests and state in {dump_dir} ({dumps.DUMP_DIR_SETTING}{missing})"))
    return stack_plan


@lru_cache(maxsize=8)
def _resolved(path: Path) -> Path:
    """``path.resolve()``, once per run: resolving stats every component, and there may be hundreds of stacks."""
    return path.resolve()


def find_hooks(
    ctx: Context,
    stack: Stack,
    stack_plan: StackPlan,
    conn=None,
    container: Container | None = None,
) -> hookset.HookFinder:
    """The stack's hooks of every kind (hooks.sh, its own .env, sql/), ready to give the steps of
    any point; fills the plan's on_error hooks, which are the same for every operation.

    Raises ConfigError for a broken declarative hook or SQL hook directory.
    """
    sources = hookset.gather_strict(stack_plan.directory, ctx.env_file_values(stack.env_file))
    finder = hookset.HookFinder(sources, stack_plan.env, stack.name, stack_plan.command, conn, container)
    stack_plan.on_error += finder.steps("on_error")
    return finder

# what RECOVER's step says (actions/db_import.py names it too)
RECOVER_WHAT = "check for leftovers of an interrupted import"


def sql(engine: Engine, container, conn, script: str, what: str, database: str | None = None, optional: bool = False,
        via=None, **extra) -> Sql:
    """A script about ``conn``'s database (its variables: DB_USER owns the temporary database),
    run on ``via`` (the admin connection, see admin_for()) or else on ``conn``; ``extra``: Sql's
    hint, mark, closes."""
    variables = engine.variables(conn)
    database = database or engine.admin_database
    run_as = via or conn
    return Sql(container, database, script, variables, run_as.exec_env(), what,
               engine.script_argv(run_as, database, variables), optional, **extra)


def admin_for(engine: Engine, stack_plan: StackPlan, conn, container) -> tuple:
    """kompose's admin connection for the stack's database-level steps (swap, rollback, clean-up,
    ANALYZE), and the hint its steps give when it cannot connect (docs/reliability.md)."""
    return engine.admin_connection(stack_plan.env, conn, container)


def rights_check(engine: Engine, container, conn, via, hint: str, command: str) -> Sql:
    """Before anything changes: the admin connection works and has every right ``command`` needs."""
    return sql(engine, container, conn, engine.CHECK_RIGHTS, f"check the rights {command} needs, as {via.describe()}",
               via=via, hint=hint)


def checked_and_recovered(engine: Engine, container, conn, via, hint: str, command: str, mark, then: str = "",
                          then_what: str = "") -> Sql:
    """The rights check, then the clean-up after an interrupted run (RECOVER), and ``then`` (the
    next script of the admin connection, when nothing runs between them): one psql session
    instead of one each, in this order, stopping at the first failure."""
    what = f"check the rights {command} needs, as {via.describe()}, and for leftovers of an interrupted import"
    if then:
        what += f"; {then_what}"
    return sql(engine, container, conn, engine.CHECK_RIGHTS + engine.RECOVER + then, what, via=via, hint=hint,
               mark=mark)


def version_check(engine: Engine, container, conn, path: Path, fmt: str, compression: str) -> CheckServerVersion:
    return CheckServerVersion(container, engine.script_argv(conn, engine.admin_database, ()), conn.exec_env(),
                              path, fmt, compression)


def stack_engine(ctx: Context, stack: Stack, stack_plan: StackPlan) -> tuple[Engine, str]:
    """(the stack's engine, why): DB_ENGINE in its layered env; else what the container that serves
    it says (its image, the official images' variables); else PostgreSQL. A detected engine is
    written into the plan's env as DB_ENGINE, so the run (and the hooks) see the same one.

    A container that cannot be found leaves the stack on PostgreSQL, whose plan reports it.
    Raises ConfigError for an unknown DB_ENGINE.
    """
    from kompose.engines import ENGINES, engine_for, engine_named
    from kompose.errors import DockerError

    env = stack_plan.env
    if env.get("DB_ENGINE", "").strip():
        engine = engine_for(env)
        return engine, f"DB_ENGINE={env['DB_ENGINE'].strip()}"
    if env.get("DB_NAME"):
        try:
            container = database_container(ctx, stack, env)
        except DockerError:
            container = None
        if container is not None and container.engine in ENGINES and container.engine != "postgres":
            env["DB_ENGINE"] = container.engine
            return engine_named(container.engine), f"container {container.name} runs {container.engine}"
    return engine_for(env), "the default"


def own_plans(engine: Engine):
    """The engine's own plans module (Engine.plans), or None: the action's plan is the engine's."""
    if not engine.plans:
        return None
    import importlib

    return importlib.import_module(engine.plans)


def database_container(ctx: Context, stack: Stack, env) -> Container:
    """The container the stack's database tools run in: the Context's injected lookup (tests), else
    the engine's answer (docker/containers.resolve)."""
    if ctx.find_container is not None:
        return ctx.find_container(ctx, stack, env)
    return containers.resolve(ctx, stack, env)
