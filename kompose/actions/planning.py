"""Planning a run: one StackPlan per selected stack (by the command's action, or compose's), the
run-wide hooks around them, and the stacks that could not be planned. Nothing here runs."""

from __future__ import annotations

from typing import Callable

from kompose.actions import compose, run_wide
from kompose.errors import ConfigError, KomposeError, NoDatabaseError, UsageError
from kompose.plan.model import Plan


def plan_run(ctx, stacks, command: str, args: list[str], kwargs: dict, planner: Callable | None):
    """(Plan, planning failures as Outcomes). ``planner`` is the action's plan(); None: a compose command."""
    from kompose.run.outcomes import Outcome

    console = ctx.console
    stack_plans, failed_planning, without_database = [], [], []
    ctx.root_env()  # a broken root .env stops the run: every stack reads it
    helping = not planner and compose.asks_help(command, args)
    if helping:
        stacks = stacks[:1]  # compose's help once, whatever the pattern selected
    stdin = "none" if planner else compose.stdin_mode(ctx, command, args, len(stacks))
    for stack in stacks:
        try:
            if planner:
                stack_plans.append(planner(ctx, stack, **kwargs))
            else:
                stack_plans.append(compose.plan(ctx, stack, command, args, stdin=stdin))
        except NoDatabaseError:
            # `"*" db:export` from cron means "every stack that has a database"; naming
            # one stack without a database is a mistake worth an error
            if len(stacks) == 1:
                raise
            without_database.append(stack.name)
        except ConfigError as exc:
            # one stack's broken configuration (a bad .env line, hooks.sh syntax): alone, nothing
            # runs (exit 2); among others, that stack fails and the others go on (exit 1)
            if len(stacks) == 1:
                raise
            failed_planning.append(Outcome(stack.name, "failed", error=exc.message))
        except UsageError:
            raise  # a bad command line stops the whole run before anything runs
        except KomposeError as exc:
            failed_planning.append(Outcome(stack.name, "failed", error=exc.message))
    from kompose.run import tools

    for stack_plan in stack_plans:
        tools.wrap(stack_plan)  # a database outside Docker: its tools container around the steps
    plan = Plan(command, stack_plans)
    # run-wide hooks get the command as typed, minus kompose's own output flags
    hook_args = [a for a in args if a not in ("--dry-run", "-n", "--json")] if planner else args
    # compose's help runs no user code: no run-wide hooks either
    plan.run_hooks = None if helping else run_wide.plan(
        ctx, command, hook_args, [s.name for s in stacks if s.name not in without_database])
    if without_database:
        console.print(console.style(f"no database (DB_NAME not set), left out: {', '.join(without_database)}", "dim"))
    if not stack_plans and not failed_planning:
        raise UsageError(f"none of the selected stacks has a database: {', '.join(without_database)}")
    return plan, failed_planning
