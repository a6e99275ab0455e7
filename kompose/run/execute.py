"""Executing a Plan: failure semantics, per-stack outcomes, the run-wide hooks, the summary and the exit code.

Per stack: the steps in order (pre hooks among them); after a failure the plan's
clean-up (on_failure); then the post hooks (after success, or always when the policy
says so); then, after any failure, the on_error hooks. Around all stacks the same
pattern once: pre_run, the stacks, post_run, on_error.
"""

from __future__ import annotations

from kompose.context import Context
from kompose.errors import KomposeError
from kompose.hooks.runner import HookRunner, HookScope
from kompose.plan.model import Plan, RunHooks
from kompose.plan.render import step_label
from kompose.run.outcomes import Outcome, RunResult, exit_code, summary_line  # noqa: F401  (the run's API)
from kompose.run.sequence import HookSequence, RunFiles
from kompose.run.stack import StackRun


# commands whose stacks never run side by side, whatever --jobs says: an import or a
# rollback swaps databases, and two stacks may (wrongly) point at the same one
PARALLEL_COMMANDS_EXCLUDED = {"db:import", "db:rollback"}


def execute_plan(ctx: Context, plan: Plan, run: RunFiles | None = None) -> list[Outcome]:
    """Run every stack's plan (--jobs N: up to N at once); a failing stack never stops the others."""
    jobs = ctx.options.jobs
    if len(plan.stacks) > 1 and _follows(plan):
        # `logs -f` never ends by itself: follow every stack at once, each line prefixed with its stack
        from kompose.run.parallel import run_parallel

        return run_parallel(
            ctx, plan.stacks, len(plan.stacks),
            lambda stack_plan, console: StackRun(ctx, stack_plan, run, console).run(), streaming=True,
        )
    if jobs > 1 and len(plan.stacks) > 1 and plan.command not in PARALLEL_COMMANDS_EXCLUDED:
        from kompose.run.parallel import run_parallel

        return run_parallel(
            ctx, plan.stacks, jobs, lambda stack_plan, console: StackRun(ctx, stack_plan, run, console).run()
        )
    outcomes = []
    for stack_plan in plan.stacks:
        ctx.console.stack_header(stack_plan.stack, stack_plan.command)
        outcomes.append(StackRun(ctx, stack_plan, run).run())
    return outcomes


def _follows(plan: Plan) -> bool:
    """Whether the plan is a compose command that follows output until interrupted (logs -f)."""
    from kompose.plan.steps import Compose

    if plan.command not in ("logs", "events"):
        return False
    for stack_plan in plan.stacks:
        for step in stack_plan.steps:
            if isinstance(step, Compose):
                words = step.argv[3:] if len(step.argv) > 3 else ()
                if plan.command == "events" or any(w in ("-f", "--follow") or (w.startswith("-") and not
                                                   w.startswith("--") and "f" in w[1:]) for w in words):
                    return True
    return False


def _names(outcomes: list[Outcome], status: str) -> str:
    return " ".join(o.stack for o in outcomes if o.status == status)


def execute_run(ctx: Context, plan: Plan, planning_failures: list[Outcome] | None = None) -> RunResult:
    """The whole invocation: run-wide pre_run, every stack, then post_run and on_error.

    A failing pre_run runs no stack (they count as skipped, the run as failed).
    ``planning_failures`` are stacks that could not be planned: they count as failed.
    """
    failures = list(planning_failures or [])
    run = RunFiles()
    try:
        return _execute_run(ctx, plan, failures, run)
    finally:
        run.close()


def _execute_run(ctx: Context, plan: Plan, failures: list[Outcome], run: RunFiles) -> RunResult:
    console = ctx.console
    run_hooks = plan.run_hooks or RunHooks(ctx.root, None, {})
    summary = Outcome("run-wide hooks", "ok")
    scope = HookScope("", run_hooks.directory, run_hooks.hooks_file, run_hooks.env, run.run_id,
                      run.run_context_file)
    runner = HookRunner(ctx, scope, lambda text: console.detail(text, "blue"), lambda line: console.stream_line("", line),
                        lambda line: console.stream_error_line("", line))
    sequence = HookSequence(console, runner, summary)

    outcomes = list(failures)
    if run_hooks.pre:
        console.stack_header("run-wide", "pre_run")
        for step in run_hooks.pre:
            try:
                runner.run(step, {"KOMPOSE_STATUS": "running"})
            except KomposeError as exc:
                sequence.fail(step, exc)
                break
    if sequence.failure is None:
        outcomes += execute_plan(ctx, plan, run)
    else:
        console.detail(f"no stack was run: {step_label(step)} failed", "red")
        outcomes += [Outcome(sp.stack, "skipped", error=f"not run: {summary.failed_step} failed")
                     for sp in plan.stacks]

    if run_hooks.post or run_hooks.on_error:
        failed = _names(outcomes, "failed")
        if sequence.failure is None and failed:
            first = next(o for o in outcomes if o.status == "failed")
            sequence.failure = {
                "KOMPOSE_STATUS": "failed",
                "KOMPOSE_FAILED_STEP": f"{first.stack}: {first.failed_step or 'planning'}",
                "KOMPOSE_ERROR": f"{first.stack}: {first.error}",
            }
        outcome_env = {
            "KOMPOSE_SUCCEEDED": _names(outcomes, "ok"),
            "KOMPOSE_FAILED": failed,
            "KOMPOSE_SKIPPED": _names(outcomes, "skipped"),
        }
        scope.env = {**run_hooks.env, **outcome_env}
        posting = run_hooks.post and (sequence.failure is None or run_hooks.post_policy == "always")
        if posting or (run_hooks.on_error and sequence.failure is not None):
            console.stack_header("run-wide", "post_run" if sequence.failure is None else "post_run / on_error")
        sequence.post(run_hooks.post, run_hooks.post_policy)
        sequence.on_error(run_hooks.on_error)

    run_errors = [f"run-wide {summary.error}"] if summary.status == "failed" else []
    run_errors += [f"run-wide {note}" for note in summary.notes]
    return RunResult(outcomes, run_errors, run.run_id)
