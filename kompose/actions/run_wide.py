"""The run-wide hooks: hook_pre_run / hook_post_run / hook_on_error of the root's hooks.sh and the
declarative KOMPOSE_HOOK_PRE_RUN_* / POST_RUN_* / ON_ERROR_* keys of the root's .env."""

from __future__ import annotations

from kompose.hooks import points as hooks
from kompose.hooks import sources as hookset
from kompose.context import Context
from kompose.env import secret_values
from kompose.plan.model import RunHooks


def plan(ctx: Context, command: str, args: list[str], stacks: list[str]) -> RunHooks | None:
    """The run-wide hooks for one invocation, or None when the root defines none.

    Raises ConfigError for a root hooks.sh that does not parse, a broken declarative
    definition or a bad time limit / post policy.
    """
    root = ctx.root.resolve()
    hooks.check_syntax(root / "hooks.sh")
    sources = hookset.gather_strict(root, hookset.own_env_values(root / ".env", ctx.process_env), run_wide=True)
    if not sources.points():
        return None
    env = dict(ctx.root_env())
    env.update(ctx.options.overrides)
    env.update(
        {
            "SCRIPT_DIR": str(root),
            "KOMPOSE_ROOT": str(root),
            "KOMPOSE_COMMAND": command,
            "KOMPOSE_STACKS": " ".join(stacks),
            "KOMPOSE_DRY_RUN": "1" if ctx.dry_run else "0",
        }
    )
    ctx.console.add_secrets(secret_values(env))
    finder = hookset.HookFinder(sources, env, "", command)
    call = (command, *args)
    return RunHooks(
        directory=root,
        hooks_file=sources.hooks_file,
        env=env,
        pre=finder.steps("pre_run", *call),
        post=finder.steps("post_run", *call),
        post_policy=hooks.post_policy(env),
        on_error=finder.steps("on_error", *call),
    )
