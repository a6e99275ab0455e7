"""The plan of a run: one StackPlan per stack (its steps, clean-up and hooks), the run-wide hooks."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from kompose.plan.steps import Step


@dataclass
class StackPlan:
    stack: str
    directory: Path
    command: str
    steps: list[Step] = field(default_factory=list)
    # run, in order, after any step failed; each must be safe to run when its
    # target is already gone
    on_failure: list[Step] = field(default_factory=list)
    # the stack's hook environment (layered env + KOMPOSE_* variables)
    env: Mapping[str, str] = field(default_factory=dict)
    hooks_file: Path | None = None
    # operations that write take the stack's lock
    lock: bool = False
    # post hooks: after the steps succeeded, or after a failure too when post_policy is "always"
    post: list[Step] = field(default_factory=list)
    post_policy: str = "success"
    # on_error hooks: after a failure (of a step or a post hook), after the clean-up and post hooks
    on_error: list[Step] = field(default_factory=list)
    # the stack's dumps, manifests, lock and state files (KOMPOSE_DUMP_DIR; None: the stack directory)
    dump_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.dump_dir is None:
            self.dump_dir = self.directory


@dataclass
class RunHooks:
    """The run-wide hooks (root hooks.sh and root .env): once before the first stack, once after the last."""

    directory: Path
    hooks_file: Path | None
    env: Mapping[str, str]
    pre: list[Step] = field(default_factory=list)
    post: list[Step] = field(default_factory=list)
    post_policy: str = "success"
    on_error: list[Step] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.pre or self.post or self.on_error)


@dataclass
class Plan:
    command: str
    stacks: list[StackPlan]
    run_hooks: RunHooks | None = None
