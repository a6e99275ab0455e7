"""Any command kompose does not own: `docker compose <cmd> <args>` in the stack dir, between its hooks."""

from __future__ import annotations

from kompose.actions.common import find_hooks, new_stack_plan
from kompose.context import Context
from kompose.hooks.points import point_name
from kompose.plan.steps import Compose, Network
from kompose.plan.model import StackPlan

from kompose.stacks import Stack

# compose commands that create containers, and so need the shared network to exist
CREATING = {"up", "create", "run"}


def plan(ctx: Context, stack: Stack, command: str, args: list[str]) -> StackPlan:
    stack_plan = new_stack_plan(ctx, stack, command)
    hooks = find_hooks(ctx, stack, stack_plan)
    point = point_name(command)
    stack_plan.steps += hooks.steps(f"pre_{point}", *args)
    network = stack_plan.env.get("NETWORK_NAME", "")
    if command in CREATING and network:
        stack_plan.steps.append(Network(network))
    stack_plan.steps.append(Compose(("docker", "compose", command, *args)))
    stack_plan.post += hooks.steps(f"post_{point}", *args)
    return stack_plan
