"""What every action needs: the stack's hook environment and its hook steps."""

from __future__ import annotations

from pathlib import Path

from kompose import hooks
from kompose.context import Context
from kompose.plan import Hook, StackPlan
from kompose.stacks import Stack


def new_stack_plan(ctx: Context, stack: Stack, command: str, lock: bool = False) -> StackPlan:
    """A StackPlan with the stack's hook environment; checks hooks.sh syntax first."""
    hooks.check_syntax(stack.hooks_file)
    env = ctx.stack_env(stack)
    env.update(
        {
            "SCRIPT_DIR": str(ctx.root.resolve()),
            "stack": stack.name,
            "KOMPOSE_ROOT": str(ctx.root.resolve()),
            "KOMPOSE_STACK": stack.name,
            "KOMPOSE_STACK_DIR": str(stack.dir.resolve()),
            "KOMPOSE_COMMAND": command,
            "KOMPOSE_DRY_RUN": "1" if ctx.dry_run else "0",
        }
    )
    hooks_file = stack.hooks_file.resolve() if stack.hooks_file.is_file() else None
    if hooks_file:
        hooks.hook_timeout(env)  # a bad KOMPOSE_HOOK_TIMEOUT stops the run before anything runs
    return StackPlan(
        stack=stack.name,
        directory=stack.dir.resolve(),
        command=command,
        env=env,
        hooks_file=hooks_file,
        lock=lock,
    )


class HookFinder:
    """Hook steps for the functions a stack's hooks.sh defines (found statically)."""

    def __init__(self, hooks_file: Path | None):
        self.functions = set(hooks.find_functions(hooks_file)) if hooks_file else set()

    def step(self, point: str, *args: str, env: dict[str, str] | None = None) -> list[Hook]:
        """A one-element list with the hook step for ``point``, or [] when it is not defined."""
        function = hooks.function_name(point)
        if function not in self.functions:
            return []
        return [Hook(point, function, tuple(str(a) for a in args), tuple((env or {}).items()))]
