"""Which code runs each step kind: the one registry of step handlers.

A handler is ``handler(run: StackRun, step) -> None``; it raises KomposeError when the step fails.
Hook kinds are run by their own modules (hooks/kinds/) through StackRun.run_step. A new step kind
is its dataclass (with a renderer registered on plan.render.describe) and one line here.
"""

from __future__ import annotations

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
