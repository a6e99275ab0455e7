"""Rendering a Plan as text (the dry run) and JSON, one renderer per step kind (single dispatch):
``describe(step) -> (kind, text)``. A step kind defined elsewhere registers its own with
``@describe.register``. Secrets are masked here; nothing here runs."""

from __future__ import annotations

import json
import shlex
from dataclasses import fields
from functools import singledispatch
from pathlib import Path
from typing import Any

from kompose.env import MASK, is_secret, mask_url, mask_url_password
from kompose.plan.model import Plan, RunHooks
from kompose.plan.steps import (
    CheckChecksum, CheckDump, CheckServerVersion, Compose, Container, CountRows, DumpInHelper, Exec, HELPER_MOUNT,
    HookStep, Network, Note, RecordDrill, Remove, RemoveHelpers, RemoveOrphans, RemoveStale, Rename, Retention, Sql,
    StartChecksum, Step, VerifyDump, VerifyDumps, WriteManifest, CheckRestored,
)

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
    if not isinstance(step, HookStep):
        raise TypeError(f"not a hook step: {step!r}")
    return f"[{step.point}] {step.what()} (timeout {_seconds(step.timeout)})"


def step_label(step: Step) -> str:
    """A short name for a step, for KOMPOSE_FAILED_STEP and messages: the hook function or .env key,
    the SQL hook directory, the tool and what it did."""
    if isinstance(step, HookStep):
        return step.label()
    if isinstance(step, (Exec, Sql)) and step.what:
        return step.what
    if isinstance(step, Compose):
        return " ".join(step.argv[:3])
    kind, text = describe(step)
    return f"{kind} {text.splitlines()[0] if text else ''}".strip()


@singledispatch
def describe(step) -> tuple[str, str]:
    """(kind, one-line-or-more description) of a step, secrets masked."""
    raise TypeError(f"unknown step {step!r}")


@describe.register
def _note(step: Note) -> tuple[str, str]:
    return "note", step.text


@describe.register
def _hook(step: HookStep) -> tuple[str, str]:
    return "hook", describe_hook(step)


@describe.register
def _compose(step: Compose) -> tuple[str, str]:
    given = {"inherit": " (stdin: kompose's input)", "terminal": " (the terminal: stdin, stdout and stderr)"}
    return "compose", _quote(step.argv) + given.get(step.stdin, "")


@describe.register
def _network(step: Network) -> tuple[str, str]:
    return "network", f"create network {step.name} unless it exists"


@describe.register
def _exec(step: Exec) -> tuple[str, str]:
    if step.argv[:2] == ("sh", "-c") and len(step.argv) > 2:
        # a script (MariaDB's swap): shown as it is, not as one shell-quoted word
        argv = " ".join(["sh -c '<script below>'", *map(shlex.quote, step.argv[3:])]) + "\n" + step.argv[2].rstrip()
        words = _env_words(step.env) + [argv]
    else:
        words = _env_words(step.env) + [_quote(step.argv)]
    text = f"{step.container.name}: " + " ".join(words)
    if step.stdin_file:
        # a compressed file is decompressed on the host as it streams in
        text += f" < {step.host_codec} -dc {step.stdin_file}" if step.host_codec else f" < {step.stdin_file}"
    if step.stdout_file:
        text += (f" | {step.host_codec} -{step.host_level} (on the host)" if step.host_codec else "") + \
            f" > {step.stdout_file}"
    if step.settings_argv:
        text += "\n  the dump's SET lines of parameters this server does not know are skipped, with a warning"
    if step.no_owner:
        text += "\n  --no-owner: ALTER … OWNER TO statements skipped; every object belongs to DB_USER"
    return "exec", text


@describe.register
def _dump_in_helper(step: DumpInHelper) -> tuple[str, str]:
    words = _env_words(step.env) + [_quote(step.argv)]
    mounted = step.pipe or step.output
    text = (f"helper container from {step.container.image or step.container.image_id} in {step.container.name}'s "
            f"network, {mounted} at {HELPER_MOUNT}/{mounted.name}, user {step.user}: " + " ".join(words))
    if step.pipe:
        text += f"\n  through the named pipe {step.pipe.name}: kompose writes {step.output} and its sha256"
    return "helper", text


@describe.register
def _remove_helpers(step: RemoveHelpers) -> tuple[str, str]:
    return "remove", f"helper containers left for {step.directory} ({step.reason})"


@describe.register
def _sql(step: Sql) -> tuple[str, str]:
    body = "\n".join("    " + line for line in _sql_preview(step).strip().splitlines())
    return "sql", f"{step.container.name}: psql -d {step.database} ({step.what})\n{body}"


@describe.register
def _check_dump(step: CheckDump) -> tuple[str, str]:
    kind = f"{step.compression}-compressed {step.format}" if step.compression else step.format
    return "check", f"{step.path} is a complete {kind} dump"


@describe.register
def _verify_dump(step: VerifyDump) -> tuple[str, str]:
    what = ("header and end marker" + (f" of the {step.compression}-decompressed content" if step.compression else "")
            if step.format == "plain" else
            "every entry, read by pg_restore" if step.thorough else "table of contents, read by pg_restore --list")
    where = f" in {step.container.name}" if step.container and step.format == "custom" else ""
    extra = "; sha256 against its manifest" if step.checksum else ""
    return "verify", f"{step.path}: {what}{where}{extra}"


@describe.register
def _check_restored(step: CheckRestored) -> tuple[str, str]:
    what = "every table of its COPY blocks" if step.format == "plain" else "every TABLE DATA entry of its archive"
    rows = ", each with the rows the dump holds (and its manifest records)" if step.counts else ""
    then = f"; then, in the same session: {step.then_what}" if step.then_what else ""
    early = " (its psql session opened while the restore runs, the script sent now)" if step.opened_early else ""
    return "check", f"{step.container.name}: {step.database} holds {what} ({step.dump.name}){rows}{then}{early}"


@describe.register
def _verify_dumps(step: VerifyDumps) -> tuple[str, str]:
    return "verify", "\n".join(describe(item)[1] for item in step.items) or "no dumps"


@describe.register
def _start_checksum(step: StartChecksum) -> tuple[str, str]:
    return "checksum", f"{step.path}: start its sha256 in the background, while the steps below run"


@describe.register
def _check_checksum(step: CheckChecksum) -> tuple[str, str]:
    then = "warn" if step.force else "refuse it"
    how = " (computed meanwhile)" if step.started else ""
    return "checksum", f"{step.path}: sha256{how} must match {step.path.name}.json when there is one (else {then})"


@describe.register
def _check_server_version(step: CheckServerVersion) -> tuple[str, str]:
    return "version", f"{step.container.name}: warn if the server's major version is older than {step.dump.name}'s"


@describe.register
def _write_manifest(step: WriteManifest) -> tuple[str, str]:
    return "manifest", f"{step.dump}.json (sha256, versions, verification; temp, fsync, rename)"


@describe.register
def _retention(step: Retention) -> tuple[str, str]:
    lines = [f"policy: {step.policy}"]
    for name, keep, rule, health in step.decisions:
        lines.append(f"{'keep  ' if keep else 'remove'}  {name}  {rule}  [{health}]")
    return "retain", "\n".join(lines)


@describe.register
def _remove_orphans(step: RemoveOrphans) -> tuple[str, str]:
    return "remove", f"{step.directory}/{step.database}_*.json whose dump is gone (checked when it runs)"


@describe.register
def _count_rows(step: CountRows) -> tuple[str, str]:
    return "count", f"{step.container.name}: rows of every table in {step.database}"


@describe.register
def _record_drill(step: RecordDrill) -> tuple[str, str]:
    return "record", f"{step.state_file} (the drill's result)"


@describe.register
def _rename(step: Rename) -> tuple[str, str]:
    return "rename", f"{step.src} -> {step.dst} (after fsync)"


@describe.register
def _remove(step: Remove) -> tuple[str, str]:
    suffix = f" ({step.reason})" if step.reason else ""
    return "remove", " ".join(str(p) for p in step.paths) + suffix


@describe.register
def _remove_stale(step: RemoveStale) -> tuple[str, str]:
    return "remove", f"{step.directory}/{step.glob} ({step.reason})"


POLICY_TEXT = {
    "success": "only on success",
    "always": "always (also after a failure, with KOMPOSE_STATUS=failed)",
}


def _bulleted(lines: list[str], title: str, steps: list[Step], verbose: bool = True) -> None:
    if not steps:
        return
    lines.append(f"      {title}:")
    for step in steps:
        kind, first, *rest = _step_lines(step, verbose)
        lines.append(f"      - {kind:<8} {first}")
        lines.extend(f"        {'':<8} {line}" for line in rest)


# steps whose lines after the first are a list the step decides on (each dump kept or removed, each
# dump verified): shown always. Any other step's further lines are detail (a SQL body, the helper's
# pipe, a restore's notes): shown with --verbose
ITEM_LINES = (Retention, VerifyDumps)


def _step_lines(step: Step, verbose: bool) -> list[str]:
    kind, text = describe(step)
    first, *rest = text.splitlines() or [""]
    if rest and not verbose and not isinstance(step, ITEM_LINES):
        rest = []
    return [kind, first, *rest]


def has_detail(plan: Plan) -> bool:
    """Whether the compact text leaves out lines (a SQL body) that --verbose would show."""
    for stack_plan in plan.stacks:
        for step in [*stack_plan.steps, *stack_plan.post, *stack_plan.on_failure, *stack_plan.on_error]:
            if not isinstance(step, ITEM_LINES) and len(describe(step)[1].splitlines()) > 1:
                return True
    return False


def render_text(plan: Plan, verbose: bool = True) -> str:
    """The plan as text, one numbered line per step; ``verbose=False`` (the CLI's default; --verbose
    is verbose=True) leaves out every step's lines after its first (SQL bodies), except the lists of ITEM_LINES steps."""
    lines = []
    run_hooks = plan.run_hooks
    if run_hooks and run_hooks.pre:
        lines.append(f"run-wide: before the first stack ({run_hooks.directory})")
        for number, step in enumerate(run_hooks.pre, 1):
            lines.append(f"  {number:>2}. {'hook':<8} {describe_hook(step)}")
    for stack_plan in plan.stacks:
        lines.append(f"{stack_plan.stack}: {stack_plan.command}" + ("  [locks the stack]" if stack_plan.lock else ""))
        for number, step in enumerate(stack_plan.steps, 1):
            kind, first, *rest = _step_lines(step, verbose)
            lines.append(f"  {number:>2}. {kind:<8} {first}")
            lines.extend(f"      {'':<8} {line}" for line in rest)
        _bulleted(lines, f"post hooks, {POLICY_TEXT[stack_plan.post_policy]}", stack_plan.post, verbose)
        _bulleted(lines, "on failure (clean-up)", stack_plan.on_failure, verbose)
        _bulleted(lines, "on error (after any failure, with KOMPOSE_FAILED_STEP and KOMPOSE_ERROR)", stack_plan.on_error, verbose)
    if run_hooks and (run_hooks.post or run_hooks.on_error):
        lines.append(f"run-wide: after the last stack ({run_hooks.directory})")
        post_when = "only when every stack succeeded" if run_hooks.post_policy == "success" else POLICY_TEXT["always"]
        _bulleted(lines, f"post_run hooks, {post_when}", run_hooks.post, verbose)
        _bulleted(lines, "on error (when a stack or a run-wide hook failed)", run_hooks.on_error, verbose)
    return "\n".join(lines)


def step_json(step: Step) -> dict[str, Any]:
    """A step as JSON-ready data, secrets masked."""
    kind, text = describe(step)
    data: dict[str, Any] = {"kind": kind}
    if isinstance(step, HookStep):
        data["hook_kind"] = step.kind
        data["text"] = text
    for item in fields(step):
        value = getattr(step, item.name)
        if item.name == "env":
            value = dict(_masked_pairs(value))
        elif isinstance(value, tuple) and value and all(hasattr(v, "__dataclass_fields__") for v in value):
            value = [step_json(v) for v in value]
        elif hasattr(value, "__dataclass_fields__") and not isinstance(value, Container):
            value = step_json(value)  # a step made of steps (run/export_checks.ExportCheck)
        elif item.name == "url":
            value = mask_url(value)
        elif isinstance(value, Container):
            value = {"id": value.id, "name": value.name, "image": value.image, "image_id": value.image_id,
                     "reason": value.reason}
        elif isinstance(value, Path):
            value = str(value)
        elif isinstance(value, tuple):
            value = [str(v) if isinstance(v, Path) else (list(v) if isinstance(v, tuple) else v) for v in value]
        if isinstance(value, str):  # a password inside a URL (a repository string) never prints
            value = mask_url_password(value)
        elif isinstance(value, list):
            value = [mask_url_password(v) if isinstance(v, str) else v for v in value]
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

