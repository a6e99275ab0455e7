"""Steps and Plans (frozen data) and their rendering as text and JSON; nothing here runs."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, Union

from kompose.env import MASK, is_secret


@dataclass(frozen=True)
class Container:
    """The container a database tool runs in, and why it was chosen."""

    id: str
    name: str
    image: str
    reason: str


@dataclass(frozen=True)
class Note:
    text: str


@dataclass(frozen=True)
class Hook:
    point: str
    function: str
    args: tuple[str, ...] = ()
    # extra variables this call gets on top of the stack's hook environment
    env: tuple[tuple[str, str], ...] = ()


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
class Sql:
    """A psql script run in the container; values travel as psql variables (-v), never pasted."""

    container: Container
    database: str
    script: str
    variables: tuple[tuple[str, str], ...]
    env: tuple[tuple[str, str], ...]
    what: str
    argv: tuple[str, ...] = ()


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
    """Refuse a dump whose sha256 differs from its manifest (``force``: warn instead)."""

    path: Path
    force: bool = False


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


Step = Union[
    Note, Hook, Compose, Network, Exec, Sql, CheckDump, Rename, Remove, RemoveStale,
    VerifyDump, VerifyDumps, CheckChecksum, CheckServerVersion, WriteManifest, Retention, RemoveOrphans, CountRows, RecordDrill,
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


@dataclass
class Plan:
    command: str
    stacks: list[StackPlan]


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


def describe(step: Step) -> tuple[str, str]:
    """(kind, one-line-or-more description) of a step, secrets masked."""
    if isinstance(step, Note):
        return "note", step.text
    if isinstance(step, Hook):
        return "hook", _quote([step.function, *step.args])
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
    if isinstance(step, CheckChecksum):
        then = "warn" if step.force else "refuse it"
        return "checksum", f"{step.path}: sha256 must match {step.path.name}.json when there is one (else {then})"
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
    if isinstance(step, Remove):
        suffix = f" ({step.reason})" if step.reason else ""
        return "remove", " ".join(str(p) for p in step.paths) + suffix
    if isinstance(step, RemoveStale):
        return "remove", f"{step.directory}/{step.glob} ({step.reason})"
    raise TypeError(f"unknown step {step!r}")


def render_text(plan: Plan) -> str:
    lines = []
    for stack_plan in plan.stacks:
        lines.append(f"{stack_plan.stack}: {stack_plan.command}" + ("  [locks the stack]" if stack_plan.lock else ""))
        for number, step in enumerate(stack_plan.steps, 1):
            kind, text = describe(step)
            first, *rest = text.splitlines() or [""]
            lines.append(f"  {number:>2}. {kind:<8} {first}")
            lines.extend(f"      {'':<8} {line}" for line in rest)
        if stack_plan.on_failure:
            lines.append("      on failure:")
            for step in stack_plan.on_failure:
                kind, text = describe(step)
                first, *rest = text.splitlines() or [""]
                lines.append(f"      - {kind:<8} {first}")
                lines.extend(f"        {'':<8} {line}" for line in rest)
    return "\n".join(lines)


def _step_json(step: Step) -> dict[str, Any]:
    kind, text = describe(step)
    data: dict[str, Any] = {"kind": kind}
    for item in fields(step):
        value = getattr(step, item.name)
        if item.name == "env":
            value = dict(_masked_pairs(value))
        elif isinstance(value, tuple) and value and all(hasattr(v, "__dataclass_fields__") for v in value):
            value = [_step_json(v) for v in value]
        elif isinstance(value, Container):
            value = {"id": value.id, "name": value.name, "image": value.image, "reason": value.reason}
        elif isinstance(value, Path):
            value = str(value)
        elif isinstance(value, tuple):
            value = [str(v) if isinstance(v, Path) else (list(v) if isinstance(v, tuple) else v) for v in value]
        data[item.name] = value
    return data


def _masked_pairs(pairs: tuple[tuple[str, str], ...]):
    return [(k, MASK if is_secret(k) else v) for k, v in pairs]


def render_json(plan: Plan) -> str:
    return json.dumps(
        {
            "command": plan.command,
            "stacks": [
                {
                    "stack": sp.stack,
                    "directory": str(sp.directory),
                    "lock": sp.lock,
                    "steps": [_step_json(s) for s in sp.steps],
                    "on_failure": [_step_json(s) for s in sp.on_failure],
                }
                for sp in plan.stacks
            ],
        },
        indent=2,
    )
