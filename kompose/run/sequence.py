"""The failure semantics around one operation, the same for a stack and for the whole run: the main
part, post hooks (per policy), then on_error hooks after any failure; and the files a run's hooks share."""

from __future__ import annotations

from kompose.errors import KomposeError
from kompose.hooks import context as hookcontext
from kompose.hooks.runner import HookRunner, failed_state
from kompose.plan.steps import Step
from kompose.run.outcomes import Outcome


class RunFiles:
    """What the stacks of one run share: the run id, the context files, the run-wide context."""

    def __init__(self, run_id: str | None = None):
        self.run_id = run_id or hookcontext.new_run_id()
        self.files = hookcontext.RunFiles(self.run_id)
        self.run_context_file = self.files.context_file("")

    def inherited(self) -> dict[str, str]:
        return hookcontext.read(self.run_context_file)

    def close(self) -> None:
        self.files.close()


class HookSequence:
    """The failure semantics around one operation, the same for a stack and for the whole run:
    after the main part, post hooks (policy), then on_error hooks after any failure."""

    def __init__(self, console, runner: HookRunner, outcome: Outcome):
        self.console = console
        self.runner = runner
        self.outcome = outcome
        self.failure: dict[str, str] | None = None

    def fail(self, step: Step | None, exc: KomposeError) -> None:
        """Record a failure; the first one stays the stack's error."""
        if self.failure is None:
            self.failure = failed_state(step, exc)
            self.outcome.status = "failed"
            self.outcome.error = exc.message
            self.outcome.failed_step = self.failure["KOMPOSE_FAILED_STEP"]
            self.console.failure(exc.message)
        else:
            self.console.failure(f"{exc.message} (after the first failure)", "yellow")
            self.outcome.notes.append(exc.message)

    def post(self, steps: list[Step], policy: str) -> None:
        """Post hooks: after success; after a failure too under policy 'always' (KOMPOSE_STATUS=failed).

        A failing post hook fails the stack; under 'success' it also stops the remaining post hooks.
        """
        if not steps:
            return
        if self.failure is not None and policy != "always":
            self.console.detail("post hooks skipped: the operation failed (KOMPOSE_POST_POLICY=success)", "dim")
            return
        for step in steps:
            state = dict(self.failure) if self.failure else {"KOMPOSE_STATUS": "ok"}
            try:
                self.runner.run(step, state)
            except KomposeError as exc:
                self.fail(step, exc)
                if policy != "always":
                    break

    def on_error(self, steps: list[Step]) -> None:
        """on_error hooks, after a failure; each runs, and a failing one never hides the first error."""
        if self.failure is None:
            return
        for step in steps:
            try:
                self.runner.run(step, self.failure)
            except KomposeError as exc:
                message = f"on_error hook failed too: {exc.message}"
                self.console.detail(message, "yellow")
                self.outcome.notes.append(message)
