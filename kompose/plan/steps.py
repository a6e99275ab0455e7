"""Steps and Plans (frozen data) and their rendering as text and JSON; nothing here runs."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, Union

from kompose.env import MASK, is_secret, mask_url_password


@dataclass(frozen=True)
class Container:
    """The container a database tool runs in, and why it was chosen."""

    id: str
    name: str
    image: str
    reason: str
    # the exact image (sha256:…) the container runs: a helper made from it has the same pg_dump
    image_id: str = ""


@dataclass(frozen=True)
class Note:
    text: str


@dataclass(frozen=True)
class Hook:
    """A bash hook: the function ``hook_<point>`` of the stack's (or the root's) hooks.sh."""

    point: str
    function: str
    args: tuple[str, ...] = ()
    # extra variables this call gets on top of the stack's hook environment
    env: tuple[tuple[str, str], ...] = ()
    timeout: float | None = None  # seconds; None: KOMPOSE_HOOK_TIMEOUT when it runs


@dataclass(frozen=True)
class HttpHook:
    """A declarative HTTP request; 2xx and 3xx (not followed) count as success."""

    point: str
    key: str  # the .env key that defines it
    method: str
    url: str
    body: str | None  # a template with {{placeholders}}; None for a POST: the JSON summary
    timeout: float
    env: tuple[tuple[str, str], ...] = ()  # the point's variables (KOMPOSE_DUMP_FILE, ...) for the summary


@dataclass(frozen=True)
class TcpHook:
    """A declarative check that host:port accepts TCP connections within the timeout."""

    point: str
    key: str
    host: str
    port: int
    timeout: float


@dataclass(frozen=True)
class ExecHook:
    """A declarative command run in a container of the stack (its compose service, or a container
    of that name), found when the hook runs."""

    point: str
    key: str
    service: str
    argv: tuple[str, ...]
    timeout: float
    env: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class SqlHook:
    """The .sql files of ``<stack>/sql/<point>/`` run through psql in the database container, in
    name order, ON_ERROR_STOP; ``atomic``: all in one transaction. Values reach the SQL as psql
    variables (``--set``), never pasted. ``container`` None: found when the hook runs."""

    point: str
    container: Container | None
    database: str
    files: tuple[Path, ...]
    atomic: bool
    variables: tuple[tuple[str, str], ...]
    env: tuple[tuple[str, str], ...]
    argv: tuple[str, ...]
    timeout: float


HOOK_STEPS = (Hook, HttpHook, TcpHook, ExecHook, SqlHook)


@dataclass(frozen=True)
class Compose:
    argv: tuple[str, ...]


@dataclass(frozen=True)
class Network:
    """Create the shared Docker network ``name`` unless it exists (stacks declare it external)."""

    name: str


@dataclass(frozen=True)
class Exec:
    """A program run inside a container; stdin/stdout may stream from/to host files."""

    container: Container
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    stdin_file: Path | None = None
    stdout_file: Path | None = None
    what: str = ""
    # the host file is compressed: kompose (de)compresses the stream on the host
    host_codec: str = ""
    host_level: int = 0


@dataclass(frozen=True)
class DumpInHelper:
    """pg_dump in a short-lived helper container that writes the dump file itself.

    The helper runs the database container's own image (the same pg_dump), in that
    container's network namespace (127.0.0.1 is the server) with one file of ``directory``
    bind-mounted under HELPER_MOUNT (the pipe, else ``output``), as ``user`` (so the file is
    owned as if kompose wrote it). ``argv`` ends with ``--file=HELPER_MOUNT/<output.name>``
    (or the pipe's name); the password is in ``env``, never argv.
    The helper is removed afterwards, whatever happens.
    """

    container: Container
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    directory: Path
    output: Path
    user: str
    what: str = ""
    # a plain dump (gzipped or not) is written in one sequential pass: pg_dump writes it into
    # this named pipe in the stack directory, and kompose copies the pipe into ``output`` in
    # 1 MiB writes, hashing it on the way (no second read for the manifest, and far cheaper
    # writes than pg_dump's 4 KiB ones). A custom archive is rewritten in place at the end:
    # no pipe, pg_dump writes ``output`` itself.
    pipe: Path | None = None


@dataclass(frozen=True)
class RemoveHelpers:
    """Remove helper containers a killed run left for ``directory`` (found by label when the step runs)."""

    directory: Path
    reason: str


HELPER_MOUNT = "/kompose-dump"


@dataclass(frozen=True)
class Sql:
    """A psql script run in the container; values travel as psql variables (-v), never pasted."""

    container: Container
    database: str
    script: str
    variables: tuple[tuple[str, str], ...]
    env: tuple[tuple[str, str], ...]
    what: str
    argv: tuple[str, ...] = ()
    # a failure is reported and the plan goes on (housekeeping the operation does not need)
    optional: bool = False


@dataclass(frozen=True)
class CheckDump:
    path: Path
    format: str
    compression: str = ""


@dataclass(frozen=True)
class VerifyDump:
    """Check a dump's structure (plain: header and end marker, decompressed; custom: pg_restore
    in ``container``) and, with ``checksum``, its sha256 against its manifest."""

    path: Path
    format: str
    compression: str = ""
    container: Container | None = None
    checksum: bool = False
    thorough: bool = False  # custom: read every entry (pg_restore -f /dev/null), not just the table of contents


@dataclass(frozen=True)
class VerifyDumps:
    """Verify several dumps, each reported; fails at the end when any failed."""

    items: tuple[VerifyDump, ...]


@dataclass(frozen=True)
class CheckChecksum:
    """Refuse a dump whose sha256 differs from its manifest (``force``: warn instead); after a
    StartChecksum of the same file, take the sha256 it computed in the background."""

    path: Path
    force: bool = False
    started: bool = False


@dataclass(frozen=True)
class StartChecksum:
    """Start computing a dump's sha256 in the background; a later CheckChecksum compares it."""

    path: Path


@dataclass(frozen=True)
class CheckServerVersion:
    """Warn when the server is of an older major version than the dump (never fails)."""

    container: Container
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    dump: Path
    format: str
    compression: str = ""


@dataclass(frozen=True)
class WriteManifest:
    """Write ``<dump>.json`` (temp, fsync, rename) from what this run learned about the dump."""

    dump: Path
    stack: str
    database: str
    format: str
    compression: str
    container: Container
    source: Path | None = None  # the file as it is now (the .partial), when not yet renamed to ``dump``


@dataclass(frozen=True)
class Retention:
    """What db:cleanup decided, one line per dump: (file, keep?, rule, health)."""

    policy: str
    decisions: tuple[tuple[str, bool, str, str], ...]


@dataclass(frozen=True)
class RemoveOrphans:
    """Remove manifests whose dump is gone, checked when the step runs (under the stack's lock)."""

    directory: Path
    database: str


@dataclass(frozen=True)
class CountRows:
    """Count the rows of every table of a database; the counts go into the stack's result."""

    container: Container
    database: str
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    script: str


@dataclass(frozen=True)
class RecordDrill:
    """Write the drill's result to ``state_file`` (read by kompose status)."""

    state_file: Path
    dump: Path


@dataclass(frozen=True)
class Rename:
    """fsync ``src`` and rename it to ``dst`` (atomic on one filesystem)."""

    src: Path
    dst: Path


@dataclass(frozen=True)
class Remove:
    paths: tuple[Path, ...]
    reason: str = ""


@dataclass(frozen=True)
class RemoveStale:
    """Remove leftovers a killed run may have left, matched when the step runs."""

    directory: Path
    glob: str
    reason: str


# ------------------------------------------------------------ restic repositories
# ``repository`` holds the repository string as configured (it may carry a password):
# it is shown masked (mask_url_password) in text and JSON, and travels to restic only in
# RESTIC_REPOSITORY.


@dataclass(frozen=True)
class PushCopy:
    """Copy a dump and its manifest into one restic repository as one snapshot, tagged with the
    stack, the database, the dump's timestamp and its sha256 (read from the manifest when it runs).

    A failure is recorded, not raised, so the other repositories still get their copy; a
    CopiesDone step later fails the stack. ``pre``/``post``: the pre_db_push / post_db_push hooks.
    """

    repository: str
    dump: Path
    stack: str
    database: str
    skip_existing: bool = False  # db:push: a repository that holds this sha256 already is left alone
    init: bool = False  # db:push --init: create the repository when there is none
    pre: tuple = ()
    post: tuple = ()


@dataclass(frozen=True)
class PullCopy:
    """Bring a copy back from the repositories: the newest of the stack's database (or ``snapshot``),
    restored into a temporary directory, its sha256 checked against its manifest and its tag, then
    renamed into ``directory`` (manifest first)."""

    repositories: tuple[str, ...]
    directory: Path
    stack: str
    database: str
    snapshot: str | None = None


@dataclass(frozen=True)
class ForgetCopies:
    """Apply the retention policy to the stack's copies in one repository (decided when it runs,
    from the repository's snapshots), then forget exactly those snapshots and prune."""

    repository: str
    stack: str
    database: str
    policy: Any  # dumps.retention.Policy


@dataclass(frozen=True)
class CopiesDone:
    """Fail the stack when a copy step above failed (each has said so with its own line)."""

    what: str = "copy"


Step = Union[
    Note, Hook, HttpHook, TcpHook, ExecHook, SqlHook, Compose, Network, Exec, DumpInHelper, RemoveHelpers, Sql,
    CheckDump, Rename, Remove, RemoveStale, VerifyDump, VerifyDumps, CheckChecksum, StartChecksum,
    CheckServerVersion, WriteManifest,
    Retention, RemoveOrphans, CountRows, RecordDrill, PushCopy, PullCopy, ForgetCopies, CopiesDone,
]


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


# ---------------------------------------------------------------- rendering


def _env_words(env: tuple[tuple[str, str], ...]) -> list[str]:
    return [f"{key}={MASK if is_secret(key) else value}" for key, value in env]


def _quote(argv: tuple[str, ...] | list[str]) -> str:
    return " ".join(shlex.quote(word) for word in argv)


def _sql_preview(step: Sql) -> str:
    """The script with psql variables shown as they would be substituted, for reading only."""
    text = step.script
    for key, value in step.variables:
        ident = '"' + value.replace('"', '""') + '"'
        literal = "'" + value.replace("'", "''") + "'"
        text = text.replace(f':"{key}"', ident).replace(f":'{key}'", literal)
    return text


def _seconds(value: float | None) -> str:
    return "KOMPOSE_HOOK_TIMEOUT" if value is None else f"{value:g} s"


def describe_hook(step: Step) -> str:
    """'[point] kind: what (timeout N s)' for a hook step of any kind."""
    from kompose.hooks.declarative import mask_url

    if isinstance(step, Hook):
        what = "bash " + _quote([step.function, *step.args])
    elif isinstance(step, HttpHook):
        what = f"http {step.method} {mask_url(step.url)}"
        if step.method == "POST":
            what += " (body: " + ("template" if step.body is not None else "JSON summary") + ")"
    elif isinstance(step, TcpHook):
        host = f"[{step.host}]" if ":" in step.host else step.host
        what = f"tcp {host}:{step.port} open"
    elif isinstance(step, ExecHook):
        what = f"exec in {step.service}: {_quote(step.argv)}"
    elif isinstance(step, SqlHook):
        where = step.container.name if step.container else "the database container"
        names = ", ".join(p.name for p in step.files)
        what = f"sql {names} -> psql -d {step.database} in {where}"
        what += " (atomic: one transaction)" if step.atomic else " (each file on its own)"
    else:
        raise TypeError(f"not a hook step: {step!r}")
    return f"[{step.point}] {what} (timeout {_seconds(step.timeout)})"


def step_label(step: Step) -> str:
    """A short name for a step, for KOMPOSE_FAILED_STEP and messages: the hook function or .env key,
    the SQL hook directory, the tool and what it did."""
    if isinstance(step, Hook):
        return step.function
    if isinstance(step, (HttpHook, TcpHook, ExecHook)):
        return step.key
    if isinstance(step, SqlHook):
        return f"sql/{step.point}/"
    if isinstance(step, (Exec, Sql)) and step.what:
        return step.what
    if isinstance(step, Compose):
        return " ".join(step.argv[:3])
    kind, text = describe(step)
    return f"{kind} {text.splitlines()[0] if text else ''}".strip()


def describe(step: Step) -> tuple[str, str]:
    """(kind, one-line-or-more description) of a step, secrets masked."""
    if isinstance(step, Note):
        return "note", step.text
    if isinstance(step, HOOK_STEPS):
        return "hook", describe_hook(step)
    if isinstance(step, Compose):
        return "compose", _quote(step.argv)
    if isinstance(step, Network):
        return "network", f"create network {step.name} unless it exists"
    if isinstance(step, Exec):
        words = _env_words(step.env) + [_quote(step.argv)]
        text = f"{step.container.name}: " + " ".join(words)
        if step.stdin_file:
            # a compressed file is decompressed on the host as it streams in
            text += f" < {step.host_codec} -dc {step.stdin_file}" if step.host_codec else f" < {step.stdin_file}"
        if step.stdout_file:
            text += (f" | {step.host_codec} -{step.host_level} (on the host)" if step.host_codec else "") + \
                f" > {step.stdout_file}"
        return "exec", text
    if isinstance(step, DumpInHelper):
        words = _env_words(step.env) + [_quote(step.argv)]
        mounted = step.pipe or step.output
        text = (f"helper container from {step.container.image or step.container.image_id} in {step.container.name}'s "
                f"network, {mounted} at {HELPER_MOUNT}/{mounted.name}, user {step.user}: " + " ".join(words))
        if step.pipe:
            text += f"\n  through the named pipe {step.pipe.name}: kompose writes {step.output} and its sha256"
        return "helper", text
    if isinstance(step, RemoveHelpers):
        return "remove", f"helper containers left for {step.directory} ({step.reason})"
    if isinstance(step, Sql):
        body = "\n".join("    " + line for line in _sql_preview(step).strip().splitlines())
        return "sql", f"{step.container.name}: psql -d {step.database} ({step.what})\n{body}"
    if isinstance(step, CheckDump):
        kind = f"{step.compression}-compressed {step.format}" if step.compression else step.format
        return "check", f"{step.path} is a complete {kind} dump"
    if isinstance(step, VerifyDump):
        what = ("header and end marker" + (f" of the {step.compression}-decompressed content" if step.compression else "")
                if step.format == "plain" else
                "every entry, read by pg_restore" if step.thorough else "table of contents, read by pg_restore --list")
        where = f" in {step.container.name}" if step.container and step.format == "custom" else ""
        extra = "; sha256 against its manifest" if step.checksum else ""
        return "verify", f"{step.path}: {what}{where}{extra}"
    if isinstance(step, VerifyDumps):
        return "verify", "\n".join(describe(item)[1] for item in step.items) or "no dumps"
    if isinstance(step, StartChecksum):
        return "checksum", f"{step.path}: start its sha256 in the background, while the steps below run"
    if isinstance(step, CheckChecksum):
        then = "warn" if step.force else "refuse it"
        how = " (computed meanwhile)" if step.started else ""
        return "checksum", f"{step.path}: sha256{how} must match {step.path.name}.json when there is one (else {then})"
    if isinstance(step, CheckServerVersion):
        return "version", f"{step.container.name}: warn if the server's major version is older than {step.dump.name}'s"
    if isinstance(step, WriteManifest):
        return "manifest", f"{step.dump}.json (sha256, versions, verification; temp, fsync, rename)"
    if isinstance(step, Retention):
        lines = [f"policy: {step.policy}"]
        for name, keep, rule, health in step.decisions:
            lines.append(f"{'keep  ' if keep else 'remove'}  {name}  {rule}  [{health}]")
        return "retain", "\n".join(lines)
    if isinstance(step, RemoveOrphans):
        return "remove", f"{step.directory}/{step.database}_*.json whose dump is gone (checked when it runs)"
    if isinstance(step, CountRows):
        return "count", f"{step.container.name}: rows of every table in {step.database}"
    if isinstance(step, RecordDrill):
        return "record", f"{step.state_file} (the drill's result)"
    if isinstance(step, Rename):
        return "rename", f"{step.src} -> {step.dst} (after fsync)"
    if isinstance(step, (PushCopy, PullCopy, ForgetCopies, CopiesDone)):
        return describe_copy_step(step)
    if isinstance(step, Remove):
        suffix = f" ({step.reason})" if step.reason else ""
        return "remove", " ".join(str(p) for p in step.paths) + suffix
    if isinstance(step, RemoveStale):
        return "remove", f"{step.directory}/{step.glob} ({step.reason})"
    raise TypeError(f"unknown step {step!r}")


def describe_copy_step(step: Step) -> tuple[str, str]:
    """(kind, text) of the restic repository steps."""
    if isinstance(step, PushCopy):
        shown = mask_url_password(step.repository)
        text = (f"{step.dump.name} and its manifest -> {shown} (restic backup: one snapshot tagged kompose "
                f"stack:{step.stack} db:{step.database} time:<the dump's> sha256:<the manifest's>"
                + (", unless one with this sha256 is there" if step.skip_existing else "") + ")")
        if step.init:
            text += "\n  restic init first when it is not a repository yet"
        text += "".join(f"\n  pre: {describe_hook(h)}" for h in step.pre)
        text += "".join(f"\n  post: {describe_hook(h)}" for h in step.post)
        return "copy", text
    if isinstance(step, PullCopy):
        which = f"snapshot {step.snapshot}" if step.snapshot else f"the newest copy of {step.database}"
        where = ", ".join(mask_url_password(r) for r in step.repositories)
        return "pull", (f"{which} (stack:{step.stack}) from {where} -> {step.directory}/ (restic restore into a "
                        "temporary directory; sha256 against its manifest; manifest, then dump renamed into place)")
    if isinstance(step, ForgetCopies):
        return "forget", (f"{mask_url_password(step.repository)}: copies tagged stack:{step.stack} db:{step.database}, "
                          f"policy {step.policy} (decided from the repository's snapshots when it runs; the newest "
                          "verified copy always stays), then restic forget --prune")
    if isinstance(step, CopiesDone):
        return "check", f"every {step.what} above succeeded (else the stack fails; the local dumps stay)"
    raise TypeError(f"not a repository step: {step!r}")


POLICY_TEXT = {
    "success": "only on success",
    "always": "always (also after a failure, with KOMPOSE_STATUS=failed)",
}


def _bulleted(lines: list[str], title: str, steps: list[Step]) -> None:
    if not steps:
        return
    lines.append(f"      {title}:")
    for step in steps:
        kind, text = describe(step)
        first, *rest = text.splitlines() or [""]
        lines.append(f"      - {kind:<8} {first}")
        lines.extend(f"        {'':<8} {line}" for line in rest)


def render_text(plan: Plan) -> str:
    lines = []
    run_hooks = plan.run_hooks
    if run_hooks and run_hooks.pre:
        lines.append(f"run-wide: before the first stack ({run_hooks.directory})")
        for number, step in enumerate(run_hooks.pre, 1):
            lines.append(f"  {number:>2}. {'hook':<8} {describe_hook(step)}")
    for stack_plan in plan.stacks:
        lines.append(f"{stack_plan.stack}: {stack_plan.command}" + ("  [locks the stack]" if stack_plan.lock else ""))
        for number, step in enumerate(stack_plan.steps, 1):
            kind, text = describe(step)
            first, *rest = text.splitlines() or [""]
            lines.append(f"  {number:>2}. {kind:<8} {first}")
            lines.extend(f"      {'':<8} {line}" for line in rest)
        _bulleted(lines, f"post hooks, {POLICY_TEXT[stack_plan.post_policy]}", stack_plan.post)
        _bulleted(lines, "on failure (clean-up)", stack_plan.on_failure)
        _bulleted(lines, "on error (after any failure, with KOMPOSE_FAILED_STEP and KOMPOSE_ERROR)", stack_plan.on_error)
    if run_hooks and (run_hooks.post or run_hooks.on_error):
        lines.append(f"run-wide: after the last stack ({run_hooks.directory})")
        post_when = "only when every stack succeeded" if run_hooks.post_policy == "success" else POLICY_TEXT["always"]
        _bulleted(lines, f"post_run hooks, {post_when}", run_hooks.post)
        _bulleted(lines, "on error (when a stack or a run-wide hook failed)", run_hooks.on_error)
    return "\n".join(lines)


def step_json(step: Step) -> dict[str, Any]:
    """A step as JSON-ready data, secrets masked."""
    kind, text = describe(step)
    data: dict[str, Any] = {"kind": kind}
    if isinstance(step, HOOK_STEPS):
        data["hook_kind"] = {Hook: "bash", HttpHook: "http", TcpHook: "tcp", ExecHook: "exec", SqlHook: "sql"}[type(step)]
        data["text"] = text
    for item in fields(step):
        value = getattr(step, item.name)
        if item.name == "env":
            value = dict(_masked_pairs(value))
        elif isinstance(value, tuple) and value and all(hasattr(v, "__dataclass_fields__") for v in value):
            value = [step_json(v) for v in value]
        elif item.name == "repository":
            value = mask_url_password(value)
        elif item.name == "repositories":
            value = [mask_url_password(v) for v in value]
        elif item.name == "policy" and not isinstance(value, (str, int, type(None))):
            value = str(value)
        elif item.name == "url":
            from kompose.hooks.declarative import mask_url

            value = mask_url(value)
        elif isinstance(value, Container):
            value = {"id": value.id, "name": value.name, "image": value.image, "image_id": value.image_id,
                     "reason": value.reason}
        elif isinstance(value, Path):
            value = str(value)
        elif isinstance(value, tuple):
            value = [str(v) if isinstance(v, Path) else (list(v) if isinstance(v, tuple) else v) for v in value]
        data[item.name] = value
    return data


def _masked_pairs(pairs: tuple[tuple[str, str], ...]):
    return [(k, MASK if is_secret(k) else v) for k, v in pairs]


def _run_hooks_json(run_hooks: RunHooks | None) -> dict[str, Any] | None:
    if not run_hooks:
        return None
    return {
        "directory": str(run_hooks.directory),
        "pre": [step_json(s) for s in run_hooks.pre],
        "post": [step_json(s) for s in run_hooks.post],
        "post_policy": run_hooks.post_policy,
        "on_error": [step_json(s) for s in run_hooks.on_error],
    }


def render_json(plan: Plan) -> str:
    return json.dumps(
        {
            "command": plan.command,
            "run_hooks": _run_hooks_json(plan.run_hooks),
            "stacks": [
                {
                    "stack": sp.stack,
                    "directory": str(sp.directory),
                    "lock": sp.lock,
                    "steps": [step_json(s) for s in sp.steps],
                    "post": [step_json(s) for s in sp.post],
                    "post_policy": sp.post_policy,
                    "on_failure": [step_json(s) for s in sp.on_failure],
                    "on_error": [step_json(s) for s in sp.on_error],
                }
                for sp in plan.stacks
            ],
        },
        indent=2,
    )
