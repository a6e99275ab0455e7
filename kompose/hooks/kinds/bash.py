"""bash hooks: the function ``hook_<point>`` of the stack's (or the root's) hooks.sh, run by bash
sourcing the file in the stack directory, with the layered env and what hooks are told."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Mapping

from kompose.errors import HookError
from kompose.hooks.points import timeout as hook_timeout
from kompose.plan.steps import HookStep


KIND = "bash"


@dataclass(frozen=True)
class Hook(HookStep):
    """A bash hook: the function ``hook_<point>`` of the stack's (or the root's) hooks.sh."""

    kind = KIND
    point: str
    function: str
    args: tuple[str, ...] = ()
    # extra variables this call gets on top of the stack's hook environment
    env: tuple[tuple[str, str], ...] = ()
    timeout: float | None = None  # seconds; None: KOMPOSE_HOOK_TIMEOUT when it runs

    def what(self) -> str:
        return "bash " + " ".join(shlex.quote(word) for word in [self.function, *self.args])

    def label(self) -> str:
        return self.function


STEP = Hook


def run(runner, step: Hook, state: Mapping[str, str]) -> None:
    from kompose.host import processes

    scope = runner.scope
    env = dict(scope.env)
    env.update(scope.context())
    env.update(step.env)
    env.update(runner.told(step, state, step.function))
    runner.detail(f"hook {step.function} {' '.join(step.args)}".rstrip())
    if scope.hooks_file is None:
        raise HookError(f"hook {step.function}: {scope.directory / 'hooks.sh'} is gone")
    limit = step.timeout if step.timeout is not None else hook_timeout(env, step.point)
    result = processes.run_hook(scope.hooks_file, step.function, step.args, env, scope.directory, limit, runner.sink,
                                getattr(runner, "err_sink", None))
    if result.lingering:
        runner.detail(
            f"hook {step.function} returned, but a background process it started still holds its output; "
            "kompose goes on and no longer shows its output"
        )
