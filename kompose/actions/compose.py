"""Any command kompose does not own: `docker compose <cmd> <args>` in the stack dir, between its hooks."""

from __future__ import annotations

from kompose.actions.common import HookFinder, new_stack_plan
from kompose.context import Context
from kompose.hooks import point_name
from kompose.plan import Compose, Network, StackPlan

# compose commands that create containers, and so need the shared network to exist
CREATING = {"up", "create", "run"}
from kompose.stacks import Stack


def plan(ctx: Context, stack: Stack, command: str, args: list[str]) -> StackPlan:
    stack_plan = new_stack_plan(ctx, stack, command)
    hooks = HookFinder(stack_plan.hooks_file)
    point = point_name(command)
    stack_plan.steps += hooks.step(f"pre_{point}", *args)
    network = stack_plan.env.get("NETWORK_NAME", "")
    if command in CREATING and network:
        stack_plan.steps.append(Network(network))
    stack_plan.steps.append(Compose(("docker", "compose", command, *args)))
    stack_plan.steps += hooks.step(f"post_{point}", *args)
    return stack_plan
