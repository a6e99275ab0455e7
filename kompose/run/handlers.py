"""Which code runs each step kind: the one registry of step handlers.

A handler is ``handler(run: StackRun, step) -> None``; it raises KomposeError when the step fails.
Hook kinds are run by their own modules (hooks/kinds/) through StackRun.run_step.

The core step kinds (plan/steps.py) are listed below. A room with step kinds of its own
(repositories, notify, …) keeps them in one module that defines each frozen dataclass, registers
its renderer with ``@plan.render.describe.register`` and maps it to its handler in ``STEPS``; that
module is one line in STEP_MODULES.
"""

from __future__ import annotations

import importlib
from typing import Callable

from kompose.plan import steps as s
from kompose.run.stack import StackRun

Handler = Callable[[StackRun, object], None]

HANDLERS: dict[type, Handler] = {
    s.Note: StackRun._run_note,
    s.Compose: StackRun._run_compose,
    s.Network: StackRun._run_network,
    s.Exec: StackRun._run_exec,
    s.DumpInHelper: StackRun._run_dumpinhelper,
    s.RemoveHelpers: StackRun._run_removehelpers,
    s.Sql: StackRun._run_sql,
    s.CheckDump: StackRun._run_checkdump,
    s.Rename: StackRun._run_rename,
    s.Remove: StackRun._run_remove,
    s.RemoveStale: StackRun._run_removestale,
    s.VerifyDump: StackRun._run_verifydump,
    s.VerifyDumps: StackRun._run_verifydumps,
    s.CheckChecksum: StackRun._run_checkchecksum,
    s.StartChecksum: StackRun._run_startchecksum,
    s.CheckServerVersion: StackRun._run_checkserverversion,
    s.WriteManifest: StackRun._run_writemanifest,
    s.Retention: StackRun._run_retention,
    s.RemoveOrphans: StackRun._run_removeorphans,
    s.CountRows: StackRun._run_countrows,
    s.RecordDrill: StackRun._run_recorddrill,
}

# modules that define step kinds of their own, each with STEPS = {StepKind: handler}
STEP_MODULES: tuple[str, ...] = (
)
for _module in STEP_MODULES:
    HANDLERS.update(importlib.import_module(_module).STEPS)
