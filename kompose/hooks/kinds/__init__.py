"""The hook kinds: one module each. A kind module defines KIND, STEP (its frozen step, a
plan.steps.HookStep with what() and label()) and run(runner, step, state); a kind defined by
.env keys (KOMPOSE_HOOK_<POINT>_<KIND>) also has parse(key, value, fields) and step(point, item,
timeout, extra). A new kind is one module here plus one line (its name) in KINDS.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# the order hooks of one point run in: checks first, the app's own hooks, then notifications
KINDS: dict[str, ModuleType] = {name: importlib.import_module(f"kompose.hooks.kinds.{name}") for name in (
    "tcp",
    "bash",
    "sql",
    "exec",
    "http",
)}
ORDER = tuple(KINDS)
# the kinds a .env key defines (KOMPOSE_HOOK_<POINT>_<KIND>)
DECLARED = {name: module for name, module in KINDS.items() if hasattr(module, "parse")}
BY_STEP = {module.STEP: module for module in KINDS.values()}
STEPS = tuple(BY_STEP)


def kind_of(step) -> ModuleType:
    return BY_STEP[type(step)]
