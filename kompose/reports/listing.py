"""Read-only reports: the stack list (--list) and each stack's dumps (db:list)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from kompose.dumps import files as dumps
from kompose.hooks import points as hooks
from kompose.dumps import manifest
from kompose.engines import has_database
from kompose.console import human_size
from kompose.context import Context
from kompose.stacks import Stack

_POSTGRES_IMAGE = re.compile(r"^\s*image:\s*['\"]?[^\s'\"]*postgres", re.MULTILINE | re.IGNORECASE)


@dataclass
class StackInfo:
    name: str
    compose_file: str
    has_env: bool
    dumps: int
    postgres: bool
    hooks: list[str]


def stack_info(ctx: Context, stack: Stack) -> StackInfo:
    env = ctx.stack_env(stack)
    database = env.get("DB_NAME") or None
    try:
        compose_text = stack.compose_file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        compose_text = ""
    return StackInfo(
        name=stack.name,
        compose_file=stack.compose_file.name,
        has_env=stack.env_file.is_file(),
        dumps=len(dumps.list_dumps(stack.dir, database)) if database else 0,
        postgres=has_database(env) or bool(_POSTGRES_IMAGE.search(compose_text)),
        hooks=hooks.find_functions(stack.hooks_file),
    )


def render_stack_list(infos: list[StackInfo]) -> str:
    width = max([len(i.name) for i in infos] + [5])
    lines = []
    for info in infos:
        hook_names = ", ".join(h.removeprefix("hook_") for h in info.hooks) or "-"
        lines.append(
            f"{info.name:<{width}}  {info.compose_file:<19}  .env:{'yes' if info.has_env else 'no ':<3}  "
            f"dumps:{info.dumps:<3}  postgres:{'yes' if info.postgres else 'no ':<3}  hooks: {hook_names}"
        )
    return "\n".join(lines)


def dump_rows(ctx: Context, stack: Stack) -> list[dict]:
    env = ctx.stack_env(stack)
    database = env.get("DB_NAME") or None
    now = time.time()
    rows = []
    for dump in dumps.list_dumps(stack.dir, database) if database else []:
        stat = dump.path.stat()
        health = manifest.health(dump)
        rows.append(
            {"stack": stack.name, "file": str(dump.path), "name": dump.path.name, "size": stat.st_size,
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
    width = max(len(r["name"]) for r in rows)
    lines = []
    for r in rows:
        kind = r["format"] + (f"+{r['compression']}" if r.get("compression") else "")
        health = r.get("verification", "")
        if health and r.get("verification_detail"):  # what was checked, and when
            health += f" ({r.get('verification_detail')})"
        lines.append(f"  {r['name']:<{width}}  {human_size(r['size']):>10}  {human_age(r['age_seconds']):>5} old  "
                     f"{kind:<11}  {health}".rstrip())
    return lines


def stack_list_command(ctx: Context, stacks: list[Stack], json_output: bool) -> int:
    """``kompose --list``: one line per stack (or a JSON list)."""
    infos = [stack_info(ctx, stack) for stack in stacks]
    if json_output:
        ctx.console.emit_json([info.__dict__ for info in infos])
    elif infos:
        ctx.console.print(render_stack_list(infos))
    else:
        ctx.console.print(f"no stacks under {ctx.root}")
    return 0


def db_list_command(ctx: Context, stacks: list[Stack], remote: bool = False) -> int:
    """``kompose PATTERN db:list``: each stack's dumps, newest first (``--remote``: its copies in its repositories)."""
    if remote:
        from kompose.repositories.listing import db_list_remote

        return db_list_remote(ctx, stacks)
    all_rows = []
    for stack in stacks:
        rows = dump_rows(ctx, stack)
        all_rows += rows
        if not ctx.options.json:
            ctx.console.stack_header(stack.name, "db:list")
            for line in render_dump_rows(stack.name, rows):
                ctx.console.print(line)
    if ctx.options.json:
        ctx.console.emit_json(all_rows)
    return 0
