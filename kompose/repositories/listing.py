"""db:list --remote: the stack's copies in each of its repositories (read-only, no lock)."""

from __future__ import annotations

from kompose.console import human_size
from kompose.context import Context
from kompose.engines import engine_for
from kompose.repositories import restic
from kompose.repositories.client import Client
from kompose.repositories.restic import RepositoryError
from kompose.stacks import Stack
from kompose.schema import document


def remote_rows(ctx: Context, stack: Stack) -> tuple[list[dict], list[str]]:
    """(one row per copy, newest first; one error line per repository that could not be read)."""
    env = ctx.stack_env(stack)
    conn = engine_for(env).connection(env, stack.name)
    found = restic.repositories_of(env)
    if found:
        restic.program()
    rows, errors = [], []
    for repository in found:
        try:
            snapshots = Client(repository, env, stack.dir).copies(stack.name, conn.database)
        except RepositoryError as exc:
            errors.append(exc.message)
            continue
        for snap in reversed(snapshots):
            rows.append({
                "stack": stack.name, "repository": repository.masked, "snapshot": snap.short_id, "id": snap.id,
                "file": snap.dump_name, "dump_time": snap.dump_time.isoformat() if snap.dump_time else None,
                "copied_at": snap.time, "size": snap.size, "sha256": snap.sha256, "verified": snap.verified,
                "manifest": snap.manifest_name is not None,
            })
    return rows, errors


def render(stack: str, rows: list[dict], errors: list[str], configured: bool) -> list[str]:
    if not configured:
        return [f"  no repositories ({restic.SETTING} is not set, or off)"]
    lines = [f"  {'snapshot':<9} {'dump':<36} {'size':>9}  {'sha256':<16}  repository"] if rows else []
    for row in rows:
        size = human_size(row["size"]) if row["size"] is not None else "?"
        state = "verified" if row["verified"] else "NOT verified"
        lines.append(f"  {row['snapshot']:<9} {row['file'] or '?':<36} {size:>9}  {row['sha256'][:16]:<16}  "
                     f"{row['repository']}  [{state}]")
    if not rows and not errors:
        lines.append("  no copies in the repositories yet")
    return lines


def db_list_remote(ctx: Context, stacks: list[Stack]) -> int:
    all_rows, failed = [], False
    for stack in stacks:
        rows, errors = remote_rows(ctx, stack)
        failed = failed or bool(errors)
        all_rows += rows
        if not ctx.options.json:
            ctx.console.stack_header(stack.name, "db:list --remote")
            configured = bool(restic.parse_repositories(ctx.stack_env(stack).get(restic.SETTING)))
            for line in render(stack.name, rows, errors, configured):
                ctx.console.print(line)
            for error in errors:  # one line each on stderr: the repository (masked) and restic's reason
                ctx.console.error(error)
        else:
            all_rows += [{"stack": stack.name, "error": error} for error in errors]
    if ctx.options.json:
        ctx.console.emit_json(document("remote_dumps", copies=all_rows))
    return 1 if failed else 0
