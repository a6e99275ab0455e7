"""Hostile input and faults, round two (issue 16): what a hostile user tried outside the first
round. Each scenario returns rows for the faults table; nothing here depends on pytest.

- the helper container's config never holds the password (docker inspect while it runs)
- SIGTERM while the helper is being created leaves no helper, no .partial, no password file
- SIGHUP cleans up like SIGTERM; --jobs plus SIGTERM leaves no .partial in any stack
- Ctrl-C / SIGTERM during db:import --in-place never hangs
- a closed stdout (`| head`) does not abort a backup; a full disk during a zstd export says so
- a secret in every form (multi-line, $, quotes, JSON) never reaches our output
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.faults import world
from tests.faults.scenarios import Totals, _complete, prepare_export
from tests.faults.world import Lab, Row

HELPER_LABEL = "io.kompose.helper"
DIRECTORY_LABEL = "io.kompose.directory"


def _helpers(lab: Lab, directory: Path) -> list[dict]:
    return lab.client.api.containers(all=True, filters={"label": [HELPER_LABEL, f"{DIRECTORY_LABEL}={directory}"]})


def _secret_dirs(directory: Path) -> list[Path]:
    return sorted(directory.glob(".kompose-secret-*"))


def _clean_stack(stack: Path) -> None:
    for stale in world.partials(stack):
        stale.unlink()


# ------------------------------------------------------------------ point 7


def helper_never_holds_the_password(lab: Lab) -> Row:
    """docker inspect of the helper while pg_dump runs: no password in its environment, labels,
    command or entrypoint; the password file it mounts is 0600 and gone afterwards."""
    stack = prepare_export(lab)
    _clean_stack(stack)
    spawned = lab.spawn("exporter", "db:export", "--transport", "direct")
    inspected, modes, problems = 0, set(), []
    deadline = time.monotonic() + 120
    while spawned.process.poll() is None and time.monotonic() < deadline:
        for info in _helpers(lab, stack):
            try:
                details = lab.client.api.inspect_container(info["Id"])
            except Exception:
                continue  # removed meanwhile
            inspected += 1
            text = json.dumps(details)
            if lab.password in text:
                problems.append("the password is in docker inspect")
            for mount in details.get("Mounts", []):
                source = Path(mount.get("Source", ""))
                if source.name == "pgpass":
                    try:
                        modes.add(oct(source.stat().st_mode & 0o777))
                    except FileNotFoundError:
                        pass
        time.sleep(0.02)
    code = spawned.wait(timeout=120)
    left = _secret_dirs(stack)
    if not inspected:
        problems.append("the helper was never seen running")
    if modes - {"0o600"}:
        problems.append(f"password file mode {sorted(modes)}")
    if left:
        problems.append(f"password file left: {left[0].name}")
    if code != 0:
        problems.append(f"exit {code}")
    return Row("docker inspect of the helper while it runs", "no password in its config; 0600 file, removed after",
               f"exit {code}; inspected {inspected}x; file mode {', '.join(sorted(modes)) or '-'}; "
               f"{len(left)} password file(s) left" + (f"  [{'; '.join(sorted(set(problems)))}]" if problems else ""),
               not problems, "hostile")


# ----------------------------------------------------------------- point 10


def sigterm_during_helper_creation(lab: Lab, trials: int, rng: random.Random) -> Row:
    """SIGTERM at random moments around the helper's creation: no helper container, no .partial
    and no password file left, ever."""
    stack = prepare_export(lab)
    left_helpers = left_partials = left_files = 0
    codes: dict[int, int] = {}
    for _ in range(trials):
        _clean_stack(stack)
        spawned = lab.spawn("exporter", "db:export", "--transport", "direct")
        spawned.wait_line("transport direct", timeout=60)
        time.sleep(rng.uniform(0, 0.25))
        spawned.kill(signal.SIGTERM)
        code = spawned.wait(timeout=60)
        codes[code] = codes.get(code, 0) + 1
        time.sleep(0.3)  # a removal kompose started in a thread
        left_helpers += len(_helpers(lab, stack))
        left_partials += len(world.partials(stack))
        left_files += len(_secret_dirs(stack))
        for info in _helpers(lab, stack):
            lab.client.api.remove_container(info["Id"], force=True)
        _clean_stack(stack)
    ok = left_helpers == left_partials == left_files == 0
    return Row(f"SIGTERM around the helper's creation ×{trials}", "no helper, .partial or password file left",
               f"{left_helpers} helper(s), {left_partials} partial(s), {left_files} password file(s) left; exits "
               + ", ".join(f"{c}×{n}" for c, n in sorted(codes.items())), ok, "hostile")


def sighup_export(lab: Lab) -> Row:
    """SIGHUP (the terminal or ssh session went away) mid-export: the same clean-up as SIGTERM."""
    stack = prepare_export(lab)
    _clean_stack(stack)
    before = set(world.final_dumps(stack))
    spawned = lab.spawn("exporter", "db:export")
    spawned.wait_line("pg_dump exp_db")
    time.sleep(0.15)
    spawned.kill(signal.SIGHUP)
    code = spawned.wait()
    left = world.partials(stack)
    new = set(world.final_dumps(stack)) - before
    complete = all(_complete(p) for p in new)
    said = any("terminated by signal 1" in line.text for line in spawned.lines)
    return Row("SIGHUP during db:export", "exit 129, says so, no .partial left",
               f"exit {code}; {len(left)} partial(s) left; {len(new)} new dump(s)",
               not left and complete and ((code == 129 and said) or (code == 0 and bool(new))), "hostile")


def jobs_sigterm(lab: Lab, stacks: int = 3) -> Row:
    """SIGTERM while --jobs N exports run at once: no .partial in any stack."""
    prepare_export(lab)
    dirs = []
    for number in range(stacks):
        name = f"jobs{number}"
        directory = lab.root / name
        if not directory.exists():
            lab.stack(name, "exp_db")
        _clean_stack(directory)
        dirs.append(directory)
    spawned = lab.spawn("--jobs", str(stacks), "jobs*", "db:export")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and spawned.process.poll() is None:
        if sum(bool(world.partials(d)) for d in dirs) >= min(2, stacks):
            break
        time.sleep(0.01)
    time.sleep(0.1)
    spawned.kill(signal.SIGTERM)
    code = spawned.wait(timeout=60)
    left = [p for d in dirs for p in world.partials(d)]
    incomplete = [p for d in dirs for p in world.final_dumps(d) if not _complete(p)]
    return Row(f"SIGTERM during db:export --jobs {stacks}", "no .partial in any stack, no incomplete dump",
               f"exit {code}; {len(left)} partial(s) left; {len(incomplete)} incomplete",
               not left and not incomplete and code != 0, "hostile")


def in_place_interrupts(lab: Lab, iw, trials: int, rng: random.Random, totals: Totals) -> Row:
    """Ctrl-C or SIGTERM during db:import --in-place's restore: kompose ends within 30 s, every time,
    and the live database accepts connections."""
    hung = 0
    codes: dict[int, int] = {}
    closed = 0
    for trial in range(trials):
        iw.reset()
        sig = signal.SIGINT if trial % 2 else signal.SIGTERM
        spawned = lab.spawn("importer", "db:import", "--in-place")
        line = spawned.wait_line("restore ", timeout=60)
        if line is None:  # ended before the restore: counted by its exit code
            code = spawned.wait()
            codes[code] = codes.get(code, 0) + 1
            continue
        time.sleep(rng.uniform(0.02, max(0.05, iw.restore_seconds * 0.8)))
        spawned.kill(sig)
        try:
            code = spawned.wait(timeout=30)
        except subprocess.TimeoutExpired:
            hung += 1
            spawned.kill(signal.SIGKILL)
            code = spawned.wait(timeout=30)
        codes[code] = codes.get(code, 0) + 1
        world.wait_settled(lab.server)
        # the next run puts back what --in-place held; then the live database must be there, open
        lab.run("importer", "db:export")
        if iw.live not in world.databases(lab.server) or not world.allows_connections(lab.server, iw.live):
            closed += 1
    return Row(f"Ctrl-C / SIGTERM during db:import --in-place ×{trials}", "ends within 30 s every time; live open",
               f"{hung} hung; {closed} missing or closed after the next run; exits " + ", ".join(f"{c}×{n}" for c, n in sorted(codes.items())),
               hung == 0 and closed == 0, "hostile")


# ----------------------------------------------------------------- point 12


def closed_stdout(lab: Lab) -> Row:
    """`kompose exporter db:export | head -1`: the reader goes away, the backup goes on."""
    stack = prepare_export(lab)
    _clean_stack(stack)
    before = set(world.final_dumps(stack))
    argv = [sys.executable, "-m", "kompose", "--root", str(lab.root), "exporter", "db:export"]
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=world.kompose_env(), start_new_session=True)
    process.stdout.readline()
    process.stdout.close()  # what `| head -1` does
    _, stderr = process.communicate(timeout=180)
    new = set(world.final_dumps(stack)) - before
    left = world.partials(stack)
    complete = bool(new) and all(_complete(p) for p in new)
    quiet = "Traceback" not in stderr.decode("utf-8", "replace")
    return Row("db:export | head -1 (stdout closed)", "exit 0; the dump complete; no .partial",
               f"exit {process.returncode}; {len(new)} new dump(s), {'complete' if complete else 'NOT complete'}; "
               f"{len(left)} partial(s)" + ("" if quiet else "; a traceback"),
               process.returncode == 0 and complete and not left and quiet, "hostile")


def zstd_disk_full(lab: Lab) -> Row:
    """A full disk while zstd compresses an export: the error says the disk is full."""
    prepare_export(lab)
    stack = lab.root / "disk-zstd"
    stack.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(stack)], check=True)
    try:
        lab.stack(stack.name, "exp_db")
        result = lab.run(stack.name, "db:export", "--compress", "zstd")
        errors = [line for line in result.output.splitlines() if line.startswith(("error: ", "  ✗ "))]
        leftovers = world.final_dumps(stack) + world.partials(stack) + list(stack.glob("*.zst*"))
        ok = (result.code == 1 and len(errors) == 1 and "No space left on device" in errors[0]
              and "Broken pipe" not in errors[0] and not leftovers and "Traceback" not in result.output)
        observed = f"exit {result.code}: {errors[0].strip()[-90:] if errors else result.output[-200:]!r}; " \
                   f"{len(leftovers)} file(s) left"
    finally:
        subprocess.run(["umount", str(stack)], check=False)
    return Row("disk full during a zstd export (2 MB tmpfs)", "exit 1: …No space left on device…, nothing left",
               observed, ok, "hostile")


# ------------------------------------------------------------------ point 6

PEM = ("-----BEGIN OPENSSH PRIVATE KEY-----\n"
       "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
       "QyNTUxOQAAACDxlPc3JAh4V1fMZ8zw4nB0kZ4q9v0Qe3yHc0Rk5Zl8cAAAAJjN2cXkzdnF\n"
       "-----END OPENSSH PRIVATE KEY-----")

FORMS_HOOKS = r"""
hook_pre_ps() {
    printf '%s\n' "$SSH_PRIVATE_KEY"
    printf '%s\n' "$API_TOKEN"
    printf '%q\n' "$API_TOKEN"
    python3 -c 'import json, os; print(json.dumps(os.environ["API_TOKEN"])); print(repr(os.environ["API_TOKEN"])); print(json.dumps(os.environ["SSH_PRIVATE_KEY"]))'
    python3 -c 'import os; print("x" * 8180 + os.environ["API_TOKEN"] + "y" * 9000)'
}
"""

FORMS_COMPOSE = """\
services:
  app:
    image: kompose/app:latest
    pull_policy: never
    environment:
      TOKEN: ${API_TOKEN}
      KEY: ${SSH_PRIVATE_KEY}
"""


def secret_forms(lab: Lab) -> Row:
    """A multi-line key and a token with $ and quotes, printed by a hook in every form and by
    `docker compose config` ($ -> $$): no line of our output holds any piece of them."""
    token = f'tok$en "with quotes" and spaces-{lab.prefix}canary$1'  # $: compose doubles it; " and spaces: escapes
    stack = lab.root / "forms"
    world.build_tree(stack, {
        "compose.yaml": FORMS_COMPOSE,
        ".env": f"API_TOKEN='{token}'\nSSH_PRIVATE_KEY=\"{PEM}\"\n",
        "hooks.sh": FORMS_HOOKS,
    })
    pieces = [token, token.replace("$", "$$"), *[line for line in PEM.splitlines()]]
    leaks, failed, masked = [], [], 0
    runs = [("forms", "ps"), ("forms", "config"), ("forms", "ps", "--dry-run"), ("--json", "forms", "config", "--dry-run")]
    for args in runs:
        log = lab.root.parent / "forms.log"
        result = lab.run("--log-file", str(log), *args)
        if result.code != 0:
            failed.append(f"{' '.join(args)}: exit {result.code}")
        masked += result.output.count("***")
        text = result.output + (log.read_text(errors="replace") if log.exists() else "")
        for piece in pieces:
            core = piece.strip("-") if piece.startswith("-----") else piece
            if core and core in text:
                leaks.append(f"{' '.join(args)}: {core[:20]}…")
    # the hook prints them 12 times, compose config twice more: all of it must have been shown, masked
    return Row("a multi-line key and a $-quoted token in every form", "no piece of either in any output or log",
               f"{len(leaks)} leak(s) in {len(runs)} runs, {masked} masked" + (f": {leaks[:3]}" if leaks else "")
               + (f"; {failed}" if failed else ""), not leaks and not failed and masked >= 12, "secrets")


def lock_wait(lab: Lab, wait: int = 3) -> Row:
    """A session holds an ACCESS EXCLUSIVE lock on a table: db:export waits KOMPOSE_LOCK_WAIT
    seconds, then fails with one line naming that session; no .partial left."""
    stack = prepare_export(lab)
    _clean_stack(stack)
    server = lab.server
    locker = "faults-locker"
    api = lab.client.api
    exec_id = api.exec_create(
        server.container.id,
        ["psql", "-X", "-U", server.user, "-d", "exp_db", "-c",
         "BEGIN; LOCK TABLE big IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(120);"],
        environment={"PGAPPNAME": locker})["Id"]
    api.exec_start(exec_id, detach=True)
    try:
        world.wait_for(lambda: locker in server.sql(
            "SELECT string_agg(application_name, ',') FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
            "WHERE l.mode = 'AccessExclusiveLock' AND l.granted", database="postgres"), 30)
        started = time.monotonic()
        result = lab.run("exporter", "db:export", env={"KOMPOSE_LOCK_WAIT": str(wait)}, timeout=120)
        took = time.monotonic() - started
    finally:
        server.sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{locker}'",
                   database="postgres")
    errors = [line.strip() for line in result.output.splitlines() if line.startswith(("error: ", "  ✗ "))]
    left = world.partials(stack)
    ok = (result.code == 1 and len(errors) == 1 and locker in errors[0] and f"waited {wait} s" in errors[0]
          and took < wait + 30 and not left and "Traceback" not in result.output)
    shown = errors[0] if errors else result.output[-200:]
    return Row(f"db:export on a locked table (KOMPOSE_LOCK_WAIT={wait})", "exit 1 after the wait, names the session",
               f"exit {result.code} after {took:.0f}s: {shown[:100]!r}; {len(left)} partial(s)", ok, "hostile")
