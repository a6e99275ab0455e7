"""Fault scenarios: each drives the real kompose against a real PostgreSQL container and returns table rows.

The pytest suite runs them with few trials, scripts/faults with many. A scenario never
asserts: it observes, and says in each Row whether what it saw is what was promised.
"""

from __future__ import annotations

import random
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.faults import world
from tests.faults.world import Lab, Row

# Rows of the big table: ~150 bytes each with its index, so 200k rows is a ~30 MB database
# and a ~25 MB plain dump: the export takes long enough to be killed in the middle.
EXPORT_ROWS = 200_000
IMPORT_ROWS = 30_000


@dataclass
class Totals:
    """The three figures the faults report ends with."""

    incomplete_dumps: int = 0
    changed_live: int = 0
    leaked_canaries: int = 0
    trials: dict[str, int] = field(default_factory=dict)


def _sleep_until(spawned: world.Spawned, at: float) -> None:
    delay = spawned.started + at - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def _wait_for_size(spawned: world.Spawned, directory: Path, old: set[Path], size: int, timeout: float = 60) -> None:
    """Wait until this run's .partial holds ``size`` bytes (or the run ends)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and spawned.process.poll() is None:
        for path in set(world.partials(directory)) - old:
            try:
                if path.stat().st_size >= size:
                    return
            except FileNotFoundError:
                pass  # renamed at this very moment
        time.sleep(0.002)


def _done_line(spawned: world.Spawned) -> world.Line | None:
    return next((line for line in spawned.lines if "✓ done" in line.text), None)


# -------------------------------------------------------------- export kills


def prepare_export(lab: Lab) -> Path:
    """The ~30 MB database exp_db and the stack "exporter" (made once per lab)."""
    stack = lab.root / "exporter"
    if not stack.exists():
        world.seed(lab.server, "exp_db", EXPORT_ROWS)
        lab.stack("exporter", "exp_db")
    return stack


def export_kills(lab: Lab, trials: int, rng: random.Random, totals: Totals) -> list[Row]:
    """SIGKILL kompose at random moments of db:export; no final-named file may be incomplete."""
    database = "exp_db"
    stack = prepare_export(lab)

    reference = lab.spawn("exporter", "db:export")
    start = reference.wait_line("pg_dump exp_db")
    assert reference.wait() == 0, reference.text()
    finished = _done_line(reference)
    stream_seconds = max(finished.at - start.at, 0.2)
    (ref_file,) = world.final_dumps(stack)
    ref_hash = world.plain_content_hash(ref_file)
    ref_size = ref_file.stat().st_size
    ref_file.unlink()

    incomplete: list[str] = []
    landed = {"before pg_dump": 0, "mid-stream": 0, "stream done, before rename": 0, "after rename": 0}
    for trial in range(trials):
        fmt = "custom" if trial % 4 == 3 else "plain"
        before = set(world.final_dumps(stack))
        partials_before = set(world.partials(stack))
        spawned = lab.spawn("exporter", "db:export", "--format", fmt)
        if trial % 5 == 4:
            # a kill anywhere in the run, start-up and lock included
            _sleep_until(spawned, rng.uniform(0, start.at + stream_seconds * 1.5))
        elif trial % 4 == 2:
            # the narrow window that matters most: the stream has ended, the check, the
            # fsync and the rename are under way
            _wait_for_size(spawned, stack, partials_before, int(ref_size * 0.995))
            time.sleep(rng.uniform(0, 0.08))
        else:
            line = spawned.wait_line(f"pg_dump {database}")
            if line is not None:
                _sleep_until(spawned, line.at + rng.uniform(0, stream_seconds * 1.5))
        spawned.kill()
        spawned.wait()
        new = set(world.final_dumps(stack)) - before
        new_partials = set(world.partials(stack)) - partials_before
        if new:
            landed["after rename"] += 1
        elif new_partials and fmt == "plain" and max(p.stat().st_size for p in new_partials) >= ref_size * 0.995:
            landed["stream done, before rename"] += 1
        elif new_partials:
            landed["mid-stream"] += 1
        else:
            landed["before pg_dump"] += 1
        for path in new:
            if path.suffix == ".sql":
                good = world.plain_content_hash(path) == ref_hash
            else:
                good = world.custom_dump_reads_back(lab.server, path)
            if not good:
                incomplete.append(path.name)
    totals.incomplete_dumps += len(incomplete)
    totals.trials["export kills"] = totals.trials.get("export kills", 0) + trials
    stale = len(world.partials(stack))

    after = lab.run("exporter", "db:export")
    newest = world.final_dumps(stack)[-1]
    custom = lab.run("exporter", "db:export", "--format", "custom")
    newest_custom = max((p for p in world.final_dumps(stack) if p.suffix == ".dump"), key=lambda p: p.stat().st_mtime)
    next_ok = (
        after.code == 0
        and not world.partials(stack)
        and world.plain_content_hash(newest) == ref_hash
        and (stale == 0 or "left by an interrupted export" in after.stdout)
        and custom.code == 0
        and world.custom_dump_reads_back(lab.server, newest_custom)
    )
    rows = [
        Row(
            f"SIGKILL during db:export ×{trials}",
            "no final-named file incomplete",
            f"{len(incomplete)} incomplete; kills landed: "
            + ", ".join(f"{count} {where}" for where, count in landed.items()),
            not incomplete,
            "export",
        ),
        Row(
            "db:export (plain, custom) after the kills",
            "exit 0, stale .partial removed and said; dumps whole",
            f"exit {after.code}, {stale} stale partial(s) before, {len(world.partials(stack))} after"
            + "".join(f"; {p.name} left" for p in stack.glob(".*.partial")),
            next_ok,
            "export",
        ),
    ]
    return rows


# -------------------------------------------------------------- import kills

PRE_SWAP_HOOKS = """
hook_pre_swap() {
    echo "pre_swap on $2"
    sleep "${FAULTS_PRE_SWAP_SLEEP:-0}"
}
"""


@dataclass
class ImportWorld:
    lab: Lab
    stack: Path
    live: str
    a: str  # fingerprint of the live content before the import
    b: str  # fingerprint of the dump's content
    restore_seconds: float

    @property
    def tmp(self) -> str:
        return self.live + "__kompose_tmp"

    @property
    def prev(self) -> str:
        return self.live + "__kompose_prev"

    def reset(self) -> None:
        """Live back to content A, no previous copy; a leftover temporary database stays."""
        world.clone(self.lab.server, "imp_seed_a", self.live)
        self.lab.server.drop_database(self.prev)

    def judge(self, swap_started: bool) -> tuple[bool, str]:
        """Is the live database exactly what the promise allows? (ok, what it is)

        Before the swap statement was handed to psql, live must be A. After, the swap
        runs to its end in the server (it is one transaction): live is A, or live is
        the dump's B and the previous database holds A. Nothing else, ever.
        """
        server = self.lab.server
        names = world.databases(server)
        if self.live not in names:
            return False, "live database missing"
        live = world.fingerprint(server, self.live)
        if live == self.a:
            return True, "live unchanged"
        if live == self.b and swap_started and self.prev in names and world.fingerprint(server, self.prev) == self.a:
            return True, "swap completed (live = dump, previous kept)"
        return False, f"live changed to {live} (A={self.a}, B={self.b})"


def import_world(lab: Lab) -> ImportWorld:
    server = lab.server
    world.seed(server, "imp_seed_a", IMPORT_ROWS, "a")
    world.seed(server, "imp_seed_b", IMPORT_ROWS + 7, "b")
    live = "imp_live"
    stack = lab.stack("importer", live, hooks=PRE_SWAP_HOOKS)
    world.make_dump(server, "imp_seed_b", stack / f"{live}_20240101_000000.sql")
    iw = ImportWorld(lab, stack, live, world.fingerprint(server, "imp_seed_a"),
                     world.fingerprint(server, "imp_seed_b"), 1.0)
    iw.reset()
    spawned = lab.spawn("importer", "db:import")
    start = spawned.wait_line("restore ")
    assert spawned.wait() == 0, spawned.text()
    swap = next(line for line in spawned.lines if "swap:" in line.text)
    iw.restore_seconds = max(swap.at - start.at, 0.2)
    return iw


def _next_run_cleans(iw: ImportWorld, had_tmp: bool, was_closed: bool) -> tuple[bool, str]:
    """The next run of the stack (a db:export) succeeds and says what it cleaned."""
    result = iw.lab.run("importer", "db:export")
    names = world.databases(iw.lab.server)
    ok = result.code == 0 and iw.tmp not in names and world.allows_connections(iw.lab.server, iw.live)
    if had_tmp and "dropped the leftover temporary database" not in result.stdout:
        ok = False
    if was_closed and "re-opened" not in result.stdout:
        ok = False
    for dump in world.final_dumps(iw.stack):
        if not dump.name.endswith("000000.sql"):
            dump.unlink()
    return ok, f"next run exit {result.code}"


def import_kills(lab: Lab, iw: ImportWorld, trials: int, rng: random.Random, totals: Totals) -> list[Row]:
    """SIGKILL kompose during db:import: during the restore, during a slow hook_pre_swap, right before the swap."""
    moments = ("during restore", "during hook_pre_swap", "right before the swap")
    outcomes = {moment: [] for moment in moments}
    problems: list[str] = []
    for trial in range(trials):
        moment = moments[trial % 3]
        iw.reset()
        spawned = lab.spawn("importer", "db:import", env={"FAULTS_PRE_SWAP_SLEEP": "1.0"})
        if moment == "during restore":
            line = spawned.wait_line("restore ")
            if line is not None:
                _sleep_until(spawned, line.at + rng.uniform(0, iw.restore_seconds))
        elif moment == "during hook_pre_swap":
            line = spawned.wait_line("pre_swap on")
            if line is not None:
                _sleep_until(spawned, line.at + rng.uniform(0, 1.0))
        else:
            # from the moment the swap is announced to shortly after its script reached psql
            line = spawned.wait_line("swap:")
            if line is not None:
                _sleep_until(spawned, line.at + rng.uniform(0, 0.25))
        spawned.kill()
        spawned.wait()
        swap_started = any("swap:" in line.text for line in spawned.lines)
        world.wait_settled(lab.server)
        ok, what = iw.judge(swap_started)
        names = world.databases(lab.server)
        had_tmp = iw.tmp in names
        was_closed = not world.allows_connections(lab.server, iw.live)
        cleaned, how = _next_run_cleans(iw, had_tmp, was_closed)
        outcomes[moment].append(what)
        if not ok:
            problems.append(f"{moment}: {what}")
        if not cleaned:
            problems.append(f"{moment}: next run did not clean up ({how})")
            ok = False
        if not ok:
            totals.changed_live += 1
    totals.trials["import kills"] = totals.trials.get("import kills", 0) + trials
    rows = []
    for moment in moments:
        seen = outcomes[moment]
        summary = ", ".join(f"{seen.count(kind)} {kind}" for kind in sorted(set(seen))) or "no trials"
        bad = [p for p in problems if p.startswith(moment)]
        rows.append(Row(
            f"SIGKILL {moment} ×{len(seen)}",
            "live unchanged (or swap whole); next run cleans",
            summary + (f"; {len(bad)} FAILED: {bad[0]}" if bad else ""),
            not bad,
            "import",
        ))
    return rows


def import_final(lab: Lab, iw: ImportWorld) -> Row:
    """After all the kills, a plain db:import goes through: live = dump, previous = A."""
    iw.reset()
    result = lab.run("importer", "db:import")
    server = lab.server
    ok = (result.code == 0 and world.fingerprint(server, iw.live) == iw.b
          and world.fingerprint(server, iw.prev) == iw.a and iw.tmp not in world.databases(server))
    return Row("db:import after the kills", "exit 0, live = dump, previous = old live",
               f"exit {result.code}", ok, "import")


def recover_reports(lab: Lab, iw: ImportWorld) -> list[Row]:
    """What the next run says after a crash: a killed import's temporary database, and a live
    database left closed (the state a container stopped inside the swap leaves; made here
    with SQL, as that window is too narrow to hit on purpose)."""
    iw.reset()
    spawned = lab.spawn("importer", "db:import", env={"FAULTS_PRE_SWAP_SLEEP": "30"})
    spawned.wait_line("pre_swap on")
    spawned.kill()
    spawned.wait()
    world.wait_settled(lab.server)
    lab.server.sql(f'ALTER DATABASE "{iw.live}" ALLOW_CONNECTIONS false')
    left = iw.tmp in world.databases(lab.server)
    result = lab.run("importer", "db:export")
    said = [line.strip() for line in result.stdout.splitlines()
            if "dropped the leftover" in line or "re-opened" in line]
    newest = world.final_dumps(iw.stack)[-1]
    from kompose.dumps.files import check_complete

    check_complete(newest, "plain")
    ok = (left and result.code == 0 and len(said) == 2 and iw.tmp not in world.databases(lab.server)
          and world.allows_connections(lab.server, iw.live) and world.fingerprint(lab.server, iw.live) == iw.a)
    newest.unlink()
    quiet = lab.run("importer", "db:export")
    for dump in world.final_dumps(iw.stack):
        if not dump.name.endswith("000000.sql"):
            dump.unlink()
    nothing_said = not any("dropped the leftover" in line or "re-opened" in line for line in quiet.stdout.splitlines())
    return [
        Row("next run after a killed import + a closed live db", "exit 0; says what it dropped and re-opened",
            f"exit {result.code}: " + " / ".join(said), ok, "import"),
        Row("next run with nothing to clean", "says nothing about clean-up", f"exit {quiet.code}",
            quiet.code == 0 and nothing_said, "import"),
    ]


def sigterm_import(lab: Lab, iw: ImportWorld, totals: Totals) -> Row:
    """SIGTERM during hook_pre_swap: kompose stops the hook, drops the temporary database itself."""
    iw.reset()
    spawned = lab.spawn("importer", "db:import", env={"FAULTS_PRE_SWAP_SLEEP": "30"})
    spawned.wait_line("pre_swap on")
    spawned.kill(signal.SIGTERM)
    code = spawned.wait(timeout=60)
    world.wait_settled(lab.server)
    ok, what = iw.judge(swap_started=False)
    left = iw.tmp in world.databases(lab.server)
    said = any("dropped the temporary database" in line.text for line in spawned.lines)
    if not ok:
        totals.changed_live += 1
    return Row("SIGTERM during hook_pre_swap", "exit 143; live unchanged; temporary database dropped at once",
               f"exit {code}; {what}; temporary database {'LEFT' if left else 'dropped'}",
               code == 143 and ok and not left and said, "import")


def stop_during_import(lab: Lab, iw: ImportWorld, moment: str, totals: Totals) -> Row:
    """Stop the database container mid-import: a clear error, live unchanged after a restart."""
    iw.reset()
    spawned = lab.spawn("importer", "db:import", env={"FAULTS_PRE_SWAP_SLEEP": "3"})
    if moment == "during restore":
        line = spawned.wait_line("restore ")
        time.sleep(min(0.15, iw.restore_seconds / 3))
    else:
        line = spawned.wait_line("pre_swap on")
    assert line is not None, spawned.text()
    lab.server.container.stop(timeout=5)
    try:
        code = spawned.wait(timeout=90)
    except subprocess.TimeoutExpired:
        spawned.kill()
        code = spawned.wait()
    error = next((line.text.strip() for line in spawned.lines if line.text.startswith("  ✗ ")), "")
    world.restart(lab.server)
    ok, what = iw.judge(swap_started=False)
    had_tmp = iw.tmp in world.databases(lab.server)
    cleaned, how = _next_run_cleans(iw, had_tmp, not world.allows_connections(lab.server, iw.live))
    clear = code == 1 and "stopped" in error
    if not ok:
        totals.changed_live += 1
    return Row(
        f"container stopped {moment}",
        "exit 1, says the container stopped; live unchanged",
        f"exit {code}: {error[:70]!r}; {what}; {how}",
        ok and cleaned and clear,
        "import",
    )


def stop_during_export(lab: Lab) -> Row:
    """Stop the database container while pg_dump waits on a table lock: clear error, no file."""
    stack = lab.root / "exporter"
    before = world.final_dumps(stack)
    world.hold_lock(lab.server, "exp_db", "big")  # pg_dump waits on it: the stop lands mid-export
    spawned = lab.spawn("exporter", "db:export")
    spawned.wait_line("pg_dump exp_db")
    time.sleep(0.5)
    lab.server.container.stop(timeout=5)
    code = spawned.wait(timeout=90)
    world.restart(lab.server)
    error = next((line.text.strip() for line in spawned.lines if line.text.startswith("  ✗ ")), "")
    clean = world.final_dumps(stack) == before and not world.partials(stack)
    return Row(
        "container stopped mid-export",
        "exit 1, says the container stopped, no file",
        f"exit {code}: {error[:70]!r}; files {'clean' if clean else 'LEFT'}",
        code == 1 and "stopped" in error and clean,
        "export",
    )


def removed_during_export(lab: Lab) -> Row:
    """Remove (docker rm -f) a database container while pg_dump waits on a lock."""
    server = world.start_server(lab.client, lab.prefix + "gone-", lab.password)
    world.seed(server, "gone_db", 1000)
    stack = lab.stack("gone", "gone_db")
    stack.joinpath(".env").write_text(stack.joinpath(".env").read_text().replace(
        lab.server.container.name, server.container.name))
    world.hold_lock(server, "gone_db", "big")
    spawned = lab.spawn("gone", "db:export")
    spawned.wait_line("pg_dump gone_db")
    time.sleep(0.5)
    server.container.remove(force=True)
    code = spawned.wait(timeout=90)
    error = next((line.text.strip() for line in spawned.lines if line.text.startswith("  ✗ ")), "")
    clean = not world.final_dumps(stack) and not world.partials(stack)
    return Row(
        "container removed mid-export",
        "exit 1, says the container is gone, no file",
        f"exit {code}: {error[:70]!r}; files {'clean' if clean else 'LEFT'}",
        # `docker rm -f` kills, then removes: kompose may see either state
        code == 1 and ("was removed" in error or "stopped" in error) and clean,
        "export",
    )


# ------------------------------------------------------------------ disk full


DISK_CASES = {
    "while": ("disk full while dumping (5 MB tmpfs)", "No space left on device"),
    "before": ("disk full before dumping (5 MB tmpfs)", "No space left on device"),
    "readonly": ("stack directory on a read-only filesystem", "Read-only file system"),
}


def disk_full(lab: Lab, kind: str) -> Row:
    """The stack directory on a 5 MB tmpfs (the ~25 MB dump cannot fit), full or read-only."""
    title, expected = DISK_CASES[kind]
    stack = lab.root / f"disk-{kind}"
    stack.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=5m", "tmpfs", str(stack)], check=True)
    try:
        lab.stack(stack.name, "exp_db")
        if kind == "before":
            subprocess.run(["dd", "if=/dev/zero", f"of={stack}/filler", "bs=1M", "count=10"], capture_output=True)
        if kind == "readonly":
            subprocess.run(["mount", "-o", "remount,ro", str(stack)], check=True)
        before = world.tree_state(stack, ignore=())
        result = lab.run(stack.name, "db:export")
        errors = [line for line in result.output.splitlines() if line.startswith(("error: ", "  ✗ "))]
        leftovers = world.final_dumps(stack) + world.partials(stack)
        after = world.tree_state(stack, ignore=(".kompose.lock", ".kompose.lock.info", ".kompose-last-run.json"))
        unchanged = {k: v for k, v in before.items() if not k.startswith(".kompose.lock")} == after
        ok = (result.code == 1 and len(errors) == 1 and expected in errors[0]
              and not leftovers and unchanged and "Traceback" not in result.output)
        observed = f"exit {result.code}: {errors[0].strip()[:80] if errors else result.output[-300:]!r}"
        observed += f"; {len(leftovers)} dump file(s) left"
    finally:
        subprocess.run(["umount", str(stack)], check=False)
    return Row(title, "exit 1, one error line, nothing left", observed, ok, "disk")


# ------------------------------------------------------------------ overlaps

SLOW_EXPORT_HOOKS = """
hook_pre_db_export() {
    echo "holding the lock"
    sleep "${FAULTS_HOLD:-2}"
}
"""


def overlapping_exports(lab: Lab) -> list[Row]:
    rows = []
    world.seed(lab.server, "ovl_db", 20_000)
    stack = lab.stack("overlap", "ovl_db", hooks=SLOW_EXPORT_HOOKS)
    lab.stack("overlap-other", "ovl_db")

    first = lab.spawn("overlap", "db:export", env={"FAULTS_HOLD": "8"})
    first.wait_line("holding the lock")
    started = time.monotonic()
    second = lab.run("overlap", "db:export")
    waited = time.monotonic() - started
    skipped = next((line for line in second.stdout.splitlines() if "skipped:" in line), "")
    expected_holder = f"locked by pid {first.process.pid} since "
    rows.append(Row("2nd db:export while the 1st holds the lock", "exit 4 at once, names the holder's pid",
                    f"exit {second.code} after {waited:.1f}s: {skipped.strip()!r}",
                    second.code == 4 and expected_holder in skipped and waited < 3, "lock"))

    neighbour = lab.run("overlap-other", "db:export")
    rows.append(Row("another stack's db:export meanwhile", "exit 0 while the 1st still holds its lock",
                    f"exit {neighbour.code} after {neighbour.elapsed:.1f}s",
                    neighbour.code == 0 and first.process.poll() is None, "lock"))

    waiting = lab.spawn("--lock-timeout", "30", "overlap", "db:export", env={"FAULTS_HOLD": "0"})
    first_code = first.wait()
    waiting_code = waiting.wait()
    dumps = world.final_dumps(stack)
    complete = all(_complete(path) for path in dumps)
    rows.append(Row("2nd db:export with --lock-timeout 30", "waits, then exit 0; both dumps complete",
                    f"exits {first_code} and {waiting_code}; {len(dumps)} dumps, "
                    f"{'all complete' if complete else 'INCOMPLETE'}",
                    first_code == 0 and waiting_code == 0 and len(dumps) == 2 and complete, "lock"))

    holder = lab.spawn("overlap", "db:export", env={"FAULTS_HOLD": "30"})
    holder.wait_line("holding the lock")
    holder.kill()
    holder.wait()
    started = time.monotonic()
    after_kill = lab.run("overlap", "db:export", env={"FAULTS_HOLD": "0"})
    rows.append(Row("db:export after the lock holder was SIGKILLed", "exit 0 at once",
                    f"exit {after_kill.code} after {time.monotonic() - started:.1f}s",
                    after_kill.code == 0 and time.monotonic() - started < 10, "lock"))

    # 1 wins over 4: one stack locked, another failing
    lab.stack("overlap-broken", "ovl_db", password="wrong-password")
    holder = lab.spawn("overlap", "db:export", env={"FAULTS_HOLD": "5"})
    holder.wait_line("holding the lock")
    mixed = lab.run("overlap,overlap-broken", "db:export")
    holder.wait()
    rows.append(Row("one stack locked + one failing", "exit 1 (1 wins over 4)",
                    f"exit {mixed.code}: {mixed.last_line!r}", mixed.code == 1 and "skipped" in mixed.stdout, "lock"))
    return rows


def _complete(path: Path) -> bool:
    from kompose.dumps.files import check_complete
    from kompose.errors import DumpError

    try:
        check_complete(path, "custom" if path.suffix == ".dump" else "plain")
        return True
    except DumpError:
        return False


def overlapping_imports(lab: Lab, iw: ImportWorld) -> list[Row]:
    rows = []
    iw.reset()
    first = lab.spawn("importer", "db:import", env={"FAULTS_PRE_SWAP_SLEEP": "2"})
    first.wait_line("pre_swap on")
    second = lab.run("importer", "db:import")
    first_code = first.wait()
    server = lab.server
    live = world.fingerprint(server, iw.live)
    rows.append(Row("2nd db:import while the 1st runs", "2nd exit 4; 1st exit 0; live = dump, prev = old",
                    f"exits {first_code} and {second.code}",
                    first_code == 0 and second.code == 4 and live == iw.b
                    and world.fingerprint(server, iw.prev) == iw.a, "lock"))

    iw.reset()
    first = lab.spawn("importer", "db:import", env={"FAULTS_PRE_SWAP_SLEEP": "2"})
    first.wait_line("pre_swap on")
    second = lab.spawn("--lock-timeout", "60", "importer", "db:import")
    codes = (first.wait(), second.wait())
    names = world.databases(server)
    rows.append(Row("2nd db:import with --lock-timeout 60", "both exit 0, one after the other; live = dump",
                    f"exits {codes[0]} and {codes[1]}",
                    codes == (0, 0) and world.fingerprint(server, iw.live) == iw.b and iw.tmp not in names, "lock"))
    return rows


# --------------------------------------------------------------- hook bounds


def hook_stdin(lab: Lab) -> Row:
    stack = lab.stack("stdin", "exp_db", hooks="""
        hook_pre_db_export() {
            cat >/dev/null
            read -r answer || echo "stdin is empty"
        }
    """)
    started = time.monotonic()
    spawned = world.spawn(lab.root, "stdin", "db:export", env={"KOMPOSE_HOOK_TIMEOUT": "60"})
    try:
        code = spawned.wait(timeout=30)
    except subprocess.TimeoutExpired:
        spawned.kill()
        code = spawned.wait()
    elapsed = time.monotonic() - started
    for dump in world.final_dumps(stack):
        dump.unlink()
    return Row("hook reading stdin (cat; read)", "does not wait: stdin is /dev/null",
               f"exit {code} after {elapsed:.1f}s", code == 0 and elapsed < 20 and "stdin is empty" in spawned.text(),
               "hooks")


def hook_background(lab: Lab) -> Row:
    marker = f"{lab.prefix}bg"
    stack = lab.stack("background", "exp_db", hooks=f"""
        hook_pre_db_export() {{
            bash -c 'while true; do echo "from the background"; sleep 0.2; done; : {marker}' &
            echo "hook returns"
        }}
    """)
    started = time.monotonic()
    spawned = world.spawn(lab.root, "background", "db:export")
    try:
        code = spawned.wait(timeout=60)
    except subprocess.TimeoutExpired:
        spawned.kill()
        code = spawned.wait()
    elapsed = time.monotonic() - started
    time.sleep(1.0)
    text = spawned.text()
    after_warning = text.split("background process", 1)[-1]
    reported = "background process" in text
    world.kill_marked(marker)
    for dump in world.final_dumps(stack):
        dump.unlink()
    # kompose goes on after a bounded wait, says so, and stops showing the background output
    quiet = after_warning.count("from the background") == 0
    return Row("hook leaves a background process on stdout", "kompose goes on after ≤ 2 s, reports it",
               f"exit {code} after {elapsed:.1f}s; {'reported' if reported else 'NOT reported'}; "
               f"{'stopped showing it' if quiet else 'kept showing its output'}",
               code == 0 and elapsed < 15 and reported and quiet, "hooks")


def rss_run(lab: Lab, stack: str, out: Path, *args: str) -> tuple[int, int]:
    """Run kompose under a wrapper recording its own peak RSS (VmHWM, KiB); stdout to ``out``. (exit code, KiB)"""
    import sys

    from tests.helpers import kompose_env

    rss_file = out.with_suffix(".rss")
    # VmHWM, not getrusage's ru_maxrss: ru_maxrss survives exec, so it would report the
    # memory of the (big) process that forked this one
    wrapper = (
        "import atexit, os, runpy, sys\n"
        "path = os.environ.pop('FAULTS_RSS_FILE')\n"
        "def peak():\n"
        "    status = open('/proc/self/status').read()\n"
        "    return status.split('VmHWM:')[1].split()[0]\n"
        "atexit.register(lambda: open(path, 'w').write(peak()))\n"
        "sys.argv = ['kompose'] + sys.argv[1:]\n"
        "runpy.run_module('kompose', run_name='__main__')\n"
    )
    with open(out, "wb") as handle:
        code = subprocess.run(
            [sys.executable, "-c", wrapper, "--root", str(lab.root), stack, *args],
            stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT,
            env=kompose_env({"FAULTS_RSS_FILE": str(rss_file)}), timeout=300,
        ).returncode
    return code, int(rss_file.read_text())


FLOOD_HOOKS = """
hook_pre_db_cleanup() {
    case "${FAULTS_FLOOD:-none}" in
        lines) head -c 100000000 /dev/zero | tr '\\0' 'x' | fold -w 999 ;;
        oneline) head -c 100000000 /dev/zero | tr '\\0' 'y' ;;
        *) echo "a few lines"; echo "of output" ;;
    esac
}
"""


def hook_flood(lab: Lab, workdir: Path) -> list[Row]:
    """A hook printing 100 MB (as 1000-byte lines, and as one endless line): kompose's peak RSS stays flat."""
    lab.stack("flood", "exp_db", hooks=FLOOD_HOOKS)
    rows = []
    base_code, base_rss = _flood_run(lab, workdir, "none")
    for kind in ("lines", "oneline"):
        started = time.monotonic()
        code, rss = _flood_run(lab, workdir, kind)
        out = workdir / f"flood-{kind}.out"
        size = out.stat().st_size
        out.unlink()
        grown = (rss - base_rss) / 1024
        rows.append(Row(f"hook prints 100 MB ({'1000-byte lines' if kind == 'lines' else 'one endless line'})",
                        "kompose's peak RSS grows < 10 MiB",
                        f"exit {code}; {size / 1e6:.0f} MB shown in {time.monotonic() - started:.0f}s; peak RSS "
                        f"{rss / 1024:.0f} MiB vs {base_rss / 1024:.0f} MiB for a quiet hook",
                        code == 0 and base_code == 0 and grown < 10 and size > 100_000_000, "hooks"))
    return rows


def _flood_run(lab: Lab, workdir: Path, kind: str) -> tuple[int, int]:
    import os

    os.environ["FAULTS_FLOOD"] = kind
    try:
        return rss_run(lab, "flood", workdir / f"flood-{kind}.out", "db:cleanup")
    finally:
        del os.environ["FAULTS_FLOOD"]


def hook_orphan(lab: Lab) -> Row:
    """SIGKILL kompose while a hook runs: the hook's processes do not outlive it."""
    marker = f"{lab.prefix}orphan"
    lab.stack("orphan", "exp_db", hooks=f"""
        hook_pre_db_export() {{
            echo "hook running"
            bash -c 'sleep 60; : {marker}'
        }}
    """)
    spawned = lab.spawn("orphan", "db:export")
    spawned.wait_line("hook running")
    time.sleep(0.3)
    alive_before = bool(world.pids_with(marker))
    spawned.kill()
    spawned.wait()
    deadline = time.monotonic() + 5
    while world.pids_with(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = world.pids_with(marker)
    world.kill_marked(marker)
    return Row("SIGKILL kompose during a hook", "the hook's processes end within 5 s",
               f"{len(left)} hook process(es) still running after 5 s" if left else "hook ended",
               alive_before and not left, "hooks")


def sigterm_export(lab: Lab) -> Row:
    """SIGTERM (what `timeout` and systemd send) mid-export: kompose cleans up before it goes."""
    stack = lab.root / "exporter"
    before = set(world.final_dumps(stack))
    for stale in world.partials(stack):
        stale.unlink()
    spawned = lab.spawn("exporter", "db:export")
    spawned.wait_line("pg_dump exp_db")
    time.sleep(0.15)
    spawned.kill(signal.SIGTERM)
    code = spawned.wait()
    left = world.partials(stack)
    new = set(world.final_dumps(stack)) - before
    complete = all(_complete(p) for p in new)
    return Row("SIGTERM during db:export", "non-zero exit, no .partial left behind",
               f"exit {code}; {len(left)} partial(s) left; {len(new)} new dump(s)",
               not left and complete and (code != 0 or bool(new)), "export")


# --------------------------------------------------------------------- secrets


class ArgvSampler:
    """Samples every host process's command line (ps -eo args) in a thread, looking for a secret."""

    def __init__(self, secret: str, interval: float = 0.01):
        self.secret = secret
        self.interval = interval
        self.samples = 0
        self.hits: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "ArgvSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            listing = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, errors="replace").stdout
            self.samples += 1
            if self.secret in listing:
                self.hits += [line for line in listing.splitlines() if self.secret in line]
            self._stop.wait(self.interval)


SECRET_HOOKS = """
hook_pre_db_export() {
    echo "the password is $DB_PASSWORD"
    env | grep -i password
}
hook_post_db_import() {
    echo "imported with $DB_PASSWORD"
}
"""

SECRET_COMPOSE = """
services:
  app:
    image: kompose/app:latest
    pull_policy: never
    command: ["sleep", "3600"]
    environment:
      APP_DB_PASSWORD: ${DB_PASSWORD}
"""


# every command kompose has, the plan of each (text and JSON), their JSON results, compose
# passthrough of a file that references the password, and failing runs with the canary
COMMANDS_WITH_SECRETS = [
    ["--json", "--list"],
    ["secret", "db:list", "--json"],
    ["secret", "db:export", "--dry-run"], ["secret", "db:export", "--dry-run", "--json"],
    ["secret", "db:export"], ["secret", "db:export", "--json", "--format", "custom"],
    ["secret", "db:import", "--dry-run", "--json"], ["secret", "db:import", "--json"],
    ["secret", "db:rollback", "--dry-run"], ["secret", "db:rollback"],
    ["secret", "db:cleanup", "--dry-run", "--json"], ["secret", "db:cleanup"],
    ["secret", "config"], ["secret", "--dry-run", "config"],
    ["secret-bad", "db:export", "--json"], ["secret-bad", "db:import"],
]


def secrets_everywhere(lab: Lab, workdir: Path, totals: Totals) -> list[Row]:
    """Every command with the canary DB_PASSWORD: the canary appears in no output and no argv."""
    canary = lab.password
    world.seed(lab.server, "sec_db", 2000)
    stack = lab.stack("secret", "sec_db", hooks=SECRET_HOOKS)
    (stack / "compose.yaml").write_text(SECRET_COMPOSE)
    lab.stack("secret-bad", "sec_db_missing")  # a failing stack, same canary
    commands = COMMANDS_WITH_SECRETS
    leaks: list[str] = []
    codes = []
    with ArgvSampler(canary) as sampler:
        for args in commands:
            result = lab.run(*args)
            codes.append(result.code)
            for stream, text in (("stdout", result.stdout), ("stderr", result.stderr)):
                if canary in text:
                    leaks.append(f"{' '.join(args)} {stream}")
    argv_hits = sorted(set(sampler.hits))
    totals.leaked_canaries += len(leaks) + len(argv_hits)
    shown = sum(1 for c in codes if c == 0)
    return [
        Row(f"canary DB_PASSWORD through {len(commands)} commands", "in no stdout, stderr, plan or --json",
            f"{len(leaks)} leak(s) ({shown} runs ok, {len(commands) - shown} failing on purpose)"
            + (f": {leaks[:3]}" if leaks else ""), not leaks, "secrets"),
        Row("…and in no host process's argv", "0 of the sampled command lines",
            f"{sampler.samples} samples of ps -eo args, {len(argv_hits)} hit(s)" + (f": {argv_hits[:2]}" if argv_hits else ""),
            not argv_hits and sampler.samples > 50, "secrets"),
    ]
