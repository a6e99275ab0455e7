"""The long fault run (scripts/faults): every scenario of tests/faults with more trials, one table.

    python -m tests.faults.main [--export-trials 50] [--import-trials 30] [--seed N]

Exit status 0 only when every case behaved as promised: 0 incomplete dumps,
0 changed live databases, 0 leaked canaries, every bad-input case handled.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Callable

from tests.faults import bad_input, hostile, hostile_dumps, scenarios, world
from tests.faults.world import Lab, Row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/faults", description=__doc__.splitlines()[0])
    parser.add_argument("--export-trials", type=int, default=50, help="SIGKILLs during db:export (default 50)")
    parser.add_argument("--import-trials", type=int, default=30, help="SIGKILLs during db:import (default 30)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: a new one, printed)")
    parser.add_argument("--only", default="", help="run only groups whose name contains this (export, import, ...)")
    args = parser.parse_args(argv)

    import docker

    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    totals = scenarios.Totals()
    rows: list[Row] = []
    started = time.monotonic()
    client = docker.from_env(timeout=120)
    with tempfile.TemporaryDirectory(prefix="kompose-faults-") as workdir:
        work = Path(workdir)
        lab = Lab.open(client, work)
        print(f"faults: seed {seed}, server {lab.server.container.name}, root {lab.root}", flush=True)
        try:
            groups: list[tuple[str, Callable[[], list[Row] | Row]]] = [
                ("export kills", lambda: scenarios.export_kills(lab, args.export_trials, rng, totals)),
                ("export sigterm", lambda: scenarios.sigterm_export(lab)),
                ("export stop", lambda: scenarios.stop_during_export(lab)),
                ("export removed", lambda: scenarios.removed_during_export(lab)),
                *[(f"disk {kind}", lambda kind=kind: scenarios.disk_full(lab, kind)) for kind in scenarios.DISK_CASES],
                ("import kills", lambda: _import_kills(lab, args.import_trials, rng, totals)),
                ("import stop restore", lambda: scenarios.stop_during_import(lab, _iw(lab), "during restore", totals)),
                ("import stop pre_swap",
                 lambda: scenarios.stop_during_import(lab, _iw(lab), "during hook_pre_swap", totals)),
                ("import recover", lambda: scenarios.recover_reports(lab, _iw(lab))),
                ("import sigterm", lambda: scenarios.sigterm_import(lab, _iw(lab), totals)),
                ("dumps hostile", lambda: hostile_dumps.cases(lab)),
                ("lock exports", lambda: scenarios.overlapping_exports(lab)),
                ("lock imports", lambda: scenarios.overlapping_imports(lab, _iw(lab))),
                ("hooks stdin", lambda: scenarios.hook_stdin(lab)),
                ("hooks background", lambda: scenarios.hook_background(lab)),
                ("hooks flood", lambda: scenarios.hook_flood(lab, work)),
                ("hooks orphan", lambda: scenarios.hook_orphan(lab)),
                ("secrets", lambda: scenarios.secrets_everywhere(lab, work, totals)),
                ("secrets forms", lambda: hostile.secret_forms(lab)),
                ("hostile helper inspect", lambda: hostile.helper_never_holds_the_password(lab)),
                ("hostile helper sigterm", lambda: hostile.sigterm_during_helper_creation(lab, 16, rng)),
                ("hostile sighup", lambda: hostile.sighup_export(lab)),
                ("hostile jobs sigterm", lambda: hostile.jobs_sigterm(lab)),
                ("hostile in-place interrupts", lambda: hostile.in_place_interrupts(lab, _iw(lab), 10, rng, totals)),
                ("hostile closed stdout", lambda: hostile.closed_stdout(lab)),
                ("hostile zstd disk full", lambda: hostile.zstd_disk_full(lab)),
                ("hostile lock wait", lambda: hostile.lock_wait(lab)),
                ("bad input", lambda: _bad_input(lab, work)),
            ]
            for name, run in groups:
                if args.only and args.only not in name:
                    continue
                if name.startswith(("export", "disk", "hooks", "hostile")):
                    scenarios.prepare_export(lab)
                print(f"faults: {name} ...", flush=True)
                try:
                    got = run()
                except Exception as exc:  # a scenario that broke is a failed row, and the run goes on
                    traceback.print_exc()
                    got = Row(name, "the scenario runs", f"it raised {type(exc).__name__}: {exc}", False, name)
                for row in [got] if isinstance(got, Row) else got:
                    rows.append(row)
                    print(f"  {'ok  ' if row.ok else 'FAIL'} {row.case}: {row.observed}", flush=True)
        finally:
            lab.close()

    bad = [row for row in rows if row.group == "bad input"]
    print()
    print(world.render_table(rows))
    print()
    print(f"{totals.incomplete_dumps} incomplete dumps, {totals.changed_live} changed live databases, "
          f"{totals.leaked_canaries} leaked canaries")
    print(f"{sum(r.ok for r in bad)} of {len(bad)} bad-input cases handled (one clear error line, non-zero exit, "
          f"nothing changed)")
    print(f"{sum(r.ok for r in rows)} of {len(rows)} cases as expected in {time.monotonic() - started:.0f} s "
          f"(seed {seed})")
    clean = totals.incomplete_dumps == totals.changed_live == totals.leaked_canaries == 0
    return 0 if clean and all(row.ok for row in rows) else 1


_IMPORT_WORLD: dict[str, scenarios.ImportWorld] = {}


def _iw(lab: Lab) -> scenarios.ImportWorld:
    if "iw" not in _IMPORT_WORLD:
        _IMPORT_WORLD["iw"] = scenarios.import_world(lab)
    return _IMPORT_WORLD["iw"]


def _import_kills(lab: Lab, trials: int, rng: random.Random, totals: scenarios.Totals) -> list[Row]:
    iw = _iw(lab)
    return scenarios.import_kills(lab, iw, trials, rng, totals) + [scenarios.import_final(lab, iw)]


def _bad_input(lab: Lab, work: Path) -> list[Row]:
    fixtures = bad_input.prepare(lab, work / "bad-input")
    return [bad_input.run_case(fixtures, case) for case in bad_input.cases("kfbad-")]


if __name__ == "__main__":
    sys.exit(main())
