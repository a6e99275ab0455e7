"""Read-only reports: the stack list (--list) and each stack's dumps (db:list)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from kompose.dumps import files as dumps
from kompose.hooks import points as hooks
from kompose.dumps import manifest
from kompose.errors import KomposeError
from kompose.schema import document
from kompose.console import human_size
from kompose.context import Context
from kompose.stacks import Stack

@dataclass
class StackInfo:
    stack: str
    directory: str
    compose_file: str
    env_file: bool
    dumps: int
    engine: str | None  # the database engine kompose backs up (DB_ENGINE, default postgres), None: no database
    hooks: list[str]  # the hook points something is attached to, named as in text (pre_up), every kind
    hook_count: int  # bash functions, declarative .env hooks and SQL hook directories
    error: str | None = None  # the stack's configuration cannot be read (a bad .env line)


def _hook_points(ctx: Context, stack: Stack) -> tuple[list[str], int]:
    from kompose.hooks import sources as hookset

    sources, _problems = hookset.gather(stack.dir, hookset.own_env_values(stack.env_file, ctx.root_env()))
    functions = [f for f in sources.functions if hooks.is_point(f[len("hook_"):])]
    count = len(functions) + len(sources.declared) + len(sources.sql)
    return sources.points(), count


def stack_info(ctx: Context, stack: Stack) -> StackInfo:
    info = StackInfo(stack.name, str(stack.dir.resolve()), stack.compose_file.name, stack.env_file.is_file(), 0, None, [], 0)
    try:
        env = ctx.stack_env(stack)
        database = env.get("DB_NAME") or None
        if database:
            info.engine = (env.get("DB_ENGINE") or "postgres").lower()
            info.dumps = len(dumps.list_dumps(dumps.dump_dir(stack.dir, stack.name, env, ctx.root), database))
        info.hooks, info.hook_count = _hook_points(ctx, stack)
    except KomposeError as exc:  # this stack shows its error; the others are listed
        info.error = exc.message
    return info


def render_stack_list(infos: list[StackInfo]) -> str:
    width = max([len(i.stack) for i in infos] + [5])
    lines = []
    for info in infos:
        if info.error:
            lines.append(f"{info.stack:<{width}}  {info.compose_file:<19}  error: {info.error}")
            continue
        hook_names = ", ".join(info.hooks) or "-"
        count = f" ({info.hook_count})" if info.hook_count > len(info.hooks) else ""
        lines.append(
            f"{info.stack:<{width}}  {info.compose_file:<19}  .env:{'yes' if info.env_file else 'no ':<3}  "
            f"dumps:{info.dumps:<3}  database:{info.engine or '-':<8}  hooks: {hook_names}{count}"
        )
    return "\n".join(lines)


def dump_rows(ctx: Context, stack: Stack) -> list[dict]:
    env = ctx.stack_env(stack)
    database = env.get("DB_NAME") or None
    now = time.time()
    rows = []
    directory = dumps.dump_dir(stack.dir, stack.name, env, ctx.root)
    for dump in dumps.list_dumps(directory, database) if database else []:
        stat = dump.path.stat()
        health = manifest.health(dump)
        rows.append(
            {"stack": stack.name, "file": str(dump.path), "dump": dump.path.name, "size": stat.st_size,
             "age_seconds": int(now - dump.timestamp.timestamp()), "format": dump.format,
             "compression": dump.compression or None, "timestamp": dump.timestamp.isoformat(),
             "verification": health.state, "verification_detail": health.detail}
        )
    return rows


def human_age(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def render_dump_rows(stack: str, rows: list[dict]) -> list[str]:
    if not rows:
        return ["  no dumps"]
    width = max(len(r["dump"]) for r in rows)
    lines = []
    for r in rows:
        kind = r["format"] + (f"+{r['compression']}" if r.get("compression") else "")
        health = r.get("verification", "")
        if health and r.get("verification_detail"):  # what was checked, and when
            health += f" ({r.get('verification_detail')})"
        lines.append(f"  {r['dump']:<{width}}  {human_size(r['size']):>10}  {human_age(r['age_seconds']):>5} old  "
                     f"{kind:<11}  {health}".rstrip())
    return lines


def stack_list_command(ctx: Context, stacks: list[Stack], json_output: bool) -> int:
    """``kompose --list``: one line per stack (or a JSON document). A stack whose configuration cannot
    be read shows its error and the others are listed; the exit code is then 1."""
    infos = [stack_info(ctx, stack) for stack in stacks]
    failed = [info for info in infos if info.error]
    if json_output:
        ctx.console.emit_json(document("stacks", root=str(ctx.root.resolve()), stacks=[info.__dict__ for info in infos]))
    elif infos:
        ctx.console.print(render_stack_list(infos))
    else:
        ctx.console.print(f"no stacks under {ctx.root}")
    for info in failed:
        ctx.console.error(f"{info.stack}: {info.error}")
    return 1 if failed else 0


def db_list_command(ctx: Context, stacks: list[Stack], remote: bool = False) -> int:
    """``kompose PATTERN db:list``: each stack's dumps, newest first (``--remote``: its copies in its repositories)."""
    if remote:
        from kompose.repositories.listing import db_list_remote

        return db_list_remote(ctx, stacks)
    all_rows = []
    failed = 0
    for stack in stacks:
        try:
            rows = dump_rows(ctx, stack)
        except KomposeError as exc:
            failed += 1
            if not ctx.options.json:
                ctx.console.stack_header(stack.name, "db:list")
            ctx.console.failure(exc.message)
            continue
        all_rows += rows
        if not ctx.options.json:
            ctx.console.stack_header(stack.name, "db:list")
            for line in render_dump_rows(stack.name, rows):
                ctx.console.print(line)
    if ctx.options.json:
        ctx.console.emit_json(document("dumps", dumps=all_rows))
    return 1 if failed else 0
