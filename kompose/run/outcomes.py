"""What running a plan gives back: one Outcome per stack, the run's result, the exit code and the summary."""

from __future__ import annotations

from dataclasses import dataclass, field

from kompose.errors import ExitCode


@dataclass
class Outcome:
    stack: str
    status: str  # ok | failed | skipped
    error: str | None = None
    duration: float = 0.0
    file: str | None = None
    bytes: int | None = None
    notes: list[str] = field(default_factory=list)
    failed_step: str | None = None  # the step or hook that failed first
    # what the operation found: manifest, verification results, retention decisions, row counts
    details: dict = field(default_factory=dict)


def exit_code(outcomes: list[Outcome], run_errors: list[str] | tuple = ()) -> ExitCode:
    if run_errors or any(o.status == "failed" for o in outcomes):
        return ExitCode.FAILED
    if any(o.status == "skipped" for o in outcomes):
        return ExitCode.LOCKED
    return ExitCode.OK


def summary_line(outcomes: list[Outcome]) -> str:
    ok = sum(o.status == "ok" for o in outcomes)
    failed = sum(o.status == "failed" for o in outcomes)
    skipped = sum(o.status == "skipped" for o in outcomes)
    text = f"{ok} succeeded, {failed} failed"
    if skipped:
        text += f", {skipped} skipped"
    return text + f" of {len(outcomes)} stack{'s' if len(outcomes) != 1 else ''}"


@dataclass
class RunResult:
    outcomes: list[Outcome]
    # failures of the run-wide hooks (the stacks' own are in their outcomes)
    run_errors: list[str] = field(default_factory=list)
    run_id: str = ""
