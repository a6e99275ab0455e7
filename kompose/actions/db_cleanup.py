"""db:cleanup: remove the dumps a retention policy does not keep (and their manifests)."""

from __future__ import annotations

from kompose.dumps import files as dumps
from kompose.dumps import manifest
from kompose.engines import engine_for
from kompose.dumps import retention
from kompose.actions.common import find_hooks, new_stack_plan
from kompose.context import Context
from kompose.errors import UsageError
from kompose.actions import db_push
from kompose.plan.steps import Note, Remove, RemoveOrphans, Retention
from kompose.run.repository_steps import CopiesDone, ForgetCopies
from kompose.plan.model import StackPlan
from kompose.stacks import Stack


def plan(ctx: Context, stack: Stack, keep: int | None = None, keep_last: int | None = None,
         keep_daily: int | None = None, keep_weekly: int | None = None, keep_monthly: int | None = None) -> StackPlan:
    """``keep`` is the older spelling of ``keep_last``; all None: the stack's KOMPOSE_KEEP_*, else keep-last 1."""
    if keep is not None:
        if keep < 1:
            raise UsageError("--keep must be at least 1: cleanup never removes the newest dump")
        if keep_last is not None and keep_last != keep:
            raise UsageError("--keep is --keep-last: give one of them")
        keep_last = keep
    stack_plan = new_stack_plan(ctx, stack, "db:cleanup", lock=True)
    engine = engine_for(stack_plan.env)
    conn = engine.connection(stack_plan.env, stack.name)
    policy, source = retention.policy_from(
        {"last": keep_last, "daily": keep_daily, "weekly": keep_weekly, "monthly": keep_monthly}, stack_plan.env
    )
    hooks = find_hooks(ctx, stack, stack_plan, conn)
    existing = dumps.list_dumps(stack_plan.dump_dir, conn.database)
    health = {d.path.name: manifest.health(d) for d in existing}
    # the safety rules count only dumps whose sha256 matched their manifest: the newest
    # verified ones are hashed (read in full) until enough of them matched
    hashed, matched = 0, 0
    for dump in existing:
        if matched >= max(policy.last, 1):
            break
        if health[dump.path.name].good:
            health[dump.path.name] = manifest.health(dump, checked=True)
            hashed += 1
            matched += health[dump.path.name].sha_checked
    decisions = retention.decide(
        [retention.Item(d.path.name, d.timestamp, health[d.path.name].sha_checked, health[d.path.name].state == "bad")
         for d in existing],
        policy,
    )
    by_name = {d.path.name: d for d in existing}
    doomed = [by_name[d.item.name] for d in decisions if not d.keep]

    stack_plan.steps += hooks.steps("pre_db_cleanup")
    if hashed:
        stack_plan.steps.append(Note(f"sha256 checked of the {hashed} newest verified dump(s): {matched} matched "
                                     "(only those count as good for the safety rules)"))
    stack_plan.steps.append(Retention(
        f"{policy} ({source})",
        tuple((d.item.name, d.keep, d.rule, _health_text(health[d.item.name])) for d in decisions),
    ))
    if doomed:
        paths = []
        for dump in doomed:
            paths.append(dump.path)
            if dump.manifest_path.exists():
                paths.append(dump.manifest_path)
        stack_plan.steps.append(Remove(tuple(paths), f"{len(doomed)} of {len(existing)} dump(s) not kept by the policy"))
    else:
        stack_plan.steps.append(Note(f"nothing to remove: the policy keeps all {len(existing)} dump(s)"))
    stack_plan.steps.append(RemoveOrphans(stack_plan.dump_dir, conn.database))
    # the same policy in each repository (forget + prune), with the same safety rules
    found = db_push.repositories(stack_plan.env)
    stack_plan.steps += [ForgetCopies(r.url, stack.name, conn.database, str(policy), policy.counts()) for r in found]
    if found:
        stack_plan.steps.append(CopiesDone("retention in a repository"))
    stack_plan.post += hooks.steps("post_db_cleanup")
    return stack_plan


def _health_text(health: manifest.Health) -> str:
    if health.sha_checked:
        return "verified: sha256 matches"
    if health.good:
        return "verified: unchanged since export (sha256 not checked)"
    return f"{health.state}: {health.detail}"
