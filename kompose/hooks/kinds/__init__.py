"""The hook kinds: one module each. A kind module defines KIND, STEP (its frozen step, a
plan.steps.HookStep with what() and label()) and run(runner, step, state); a kind defined by
.env keys (KOMPOSE_HOOK_<POINT>_<KIND>) also has parse(key, value, fields) and step(point, item,
timeout, extra). A new kind is one module here plus one line in KINDS.
"""

from __future__ import annotations

from types import ModuleType

from kompose.hooks.kinds import bash, http, sql, tcp
from kompose.hooks.kinds import exec as exec_

# the order hooks of one point run in: checks first, the app's own hooks, then notifications
KINDS: dict[str, ModuleType] = {
    "tcp": tcp,
    "bash": bash,
    "sql": sql,
    "exec": exec_,
    "http": http,
}
ORDER = tuple(KINDS)
# the kinds a .env key defines (KOMPOSE_HOOK_<POINT>_<KIND>)
DECLARED = {name: module for name, module in KINDS.items() if hasattr(module, "parse")}
BY_STEP = {module.STEP: module for module in KINDS.values()}
STEPS = tuple(BY_STEP)


def kind_of(step) -> ModuleType:
    return BY_STEP[type(step)]
