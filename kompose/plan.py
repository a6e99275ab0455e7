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


Step = Union[Note, Hook, Compose, Network, Exec, Sql, CheckDump, Rename, Remove, RemoveStale]


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
            text += f" < {step.stdin_file}"
        if step.stdout_file:
            text += f" > {step.stdout_file}"
        return "exec", text
    if isinstance(step, Sql):
        body = "\n".join("    " + line for line in _sql_preview(step).strip().splitlines())
        return "sql", f"{step.container.name}: psql -d {step.database} ({step.what})\n{body}"
    if isinstance(step, CheckDump):
        return "check", f"{step.path} is a complete {step.format} dump"
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
