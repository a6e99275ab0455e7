"""`kompose PATTERN hooks` (every hook that would run, per stack and point, in order) and
`kompose PATTERN hooks:check` (syntax, shellcheck, declarative and SQL definitions). Runs no hook."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kompose.hooks import points as hooks
from kompose.host.processes import run_captured
from kompose.hooks import sources as hookset
from kompose.engines import engine_for
from kompose.context import Context
from kompose.errors import ConfigError
from kompose.plan.steps import Step
from kompose.plan.render import describe_hook, step_json
from kompose.schema import document
from kompose.stacks import Stack

_INFO = {info.point: info for info in hooks.OPERATION_POINTS}
_RUN_INFO = {info.point: info for info in hooks.RUN_POINT_INFO}


def _when(point: str, run_wide: bool) -> str:
    if run_wide:
        return _RUN_INFO[point].when
    if point in _INFO:
        return _INFO[point].when
    verb = point.split("_", 1)[1]
    if point.startswith("pre_"):
        return f"before `docker compose {verb}`"
    return f"after `docker compose {verb}`"


@dataclass
class PointListing:
    point: str
    when: str
    steps: list[Step] = field(default_factory=list)
    problem: str | None = None


@dataclass
class PlaceListing:
    """The hooks of one place: a stack, or the root (run-wide)."""

    name: str
    directory: Path
    run_wide: bool
    post_policy: str = "success"
    points: list[PointListing] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _listing(name: str, directory: Path, env: dict, sources: hookset.HookSources, run_wide: bool) -> PlaceListing:
    place = PlaceListing(name, directory, run_wide)
    try:
        place.post_policy = hooks.post_policy(env)
    except ConfigError as exc:
        place.problems.append(exc.message)
    finder = hookset.HookFinder(sources, env, name, "")
    temp = engine_for(env).temp_name(env["DB_NAME"]) if env.get("DB_NAME") else None
    for point in sources.points():
        listing = PointListing(point, _when(point, run_wide))
        try:
            listing.steps = finder.steps(point, database=temp if point == "pre_swap" else None)
        except ConfigError as exc:
            listing.problem = exc.message
        place.points.append(listing)
    return place


def list_hooks(ctx: Context, stacks: list[Stack]) -> list[PlaceListing]:
    """The run-wide hooks (when the root defines any) and each stack's, point by point in running order."""
    places = []
    root = ctx.root.resolve()
    sources, problems = hookset.gather(root, hookset.own_env_values(root / ".env", ctx.process_env), run_wide=True)
    if sources.points() or problems:
        place = _listing("run-wide", root, dict(ctx.root_env()), sources, True)
        place.problems += problems
        places.append(place)
    for stack in stacks:
        env = ctx.stack_env(stack)
        sources, problems = hookset.gather(stack.dir.resolve(), hookset.own_env_values(stack.env_file, ctx.root_env()))
        place = _listing(stack.name, stack.dir.resolve(), env, sources, False)
        place.problems += problems
        places.append(place)
    return places


def render_listing(places: list[PlaceListing]) -> list[str]:
    lines = []
    for place in places:
        title = f"run-wide hooks ({place.directory}), once per invocation" if place.run_wide else place.name
        lines.append(title)
        if not place.points:
            lines.append("  no hooks")
        for listing in place.points:
            suffix = ""
            if listing.point.startswith("post_") and not place.run_wide:
                suffix = "  [post: " + ("only on success" if place.post_policy == "success" else "always") + "]"
            lines.append(f"  {listing.point}: {listing.when}{suffix}")
            for number, step in enumerate(listing.steps, 1):
                lines.append(f"    {number}. {describe_hook(step).split('] ', 1)[1]}")
            if listing.problem:
                lines.append(f"    ✗ {listing.problem}")
        for problem in place.problems:
            lines.append(f"  ✗ {problem}")
    return lines


def listing_json(places: list[PlaceListing]) -> list[dict[str, Any]]:
    return [
        {
            "stack": None if place.run_wide else place.name,
            "directory": str(place.directory),
            "run_wide": place.run_wide,
            "post_policy": place.post_policy,
            "points": [
                {"point": p.point, "when": p.when, "hooks": [step_json(s) for s in p.steps], "problem": p.problem}
                for p in place.points
            ],
            "problems": place.problems,
        }
        for place in places
    ]


# ------------------------------------------------------------------ check


@dataclass
class CheckResult:
    name: str
    directory: Path
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)  # what was looked at, for the ✓ line


def shellcheck(hooks_file: Path) -> tuple[list[str], list[str]] | None:
    """(errors, warnings) from shellcheck, or None when it is not installed."""
    program = shutil.which("shellcheck")
    if not program:
        return None
    result = run_captured([program, "--shell=bash", "--severity=warning", "--format=gcc", str(hooks_file)],
                          what="shellcheck")
    errors, warnings = [], []
    for line in result.stdout.splitlines():
        (errors if ": error:" in line else warnings).append(line.strip())
    return errors, warnings


def _check_bash(result: CheckResult, hooks_file: Path, run_wide: bool) -> None:
    if not hooks_file.is_file() and not hooks_file.exists():
        return
    problem = hooks.syntax_error(hooks_file)
    if problem:
        result.problems.append(problem)
        return
    result.checked.append("hooks.sh parses (bash -n)")
    for line in hooks.top_level_exits(hooks_file):
        result.problems.append(f"{hooks_file}:{line}: exit outside a function: sourcing the file ends the shell, "
                               "so no hook of it runs")
    for function in hooks.find_functions(hooks_file):
        point = function[len("hook_"):]
        if run_wide and point not in hooks.RUN_POINTS:
            result.warnings.append(
                f"{hooks_file}: {function} never runs: the root hooks.sh holds only hook_pre_run, hook_post_run "
                "and hook_on_error"
            )
        elif not run_wide and not hooks.is_point(point):
            result.warnings.append(f"{hooks_file}: {function} is not a hook point (pre_*, post_*, on_error)")
    found = shellcheck(hooks_file)
    if found is None:
        result.checked.append("shellcheck not installed")
        return
    errors, warnings = found
    result.problems += [f"shellcheck: {line}" for line in errors]
    result.warnings += [f"shellcheck: {line}" for line in warnings]
    result.checked.append("shellcheck")


def _check_settings(result: CheckResult, env: dict, sources: hookset.HookSources, name: str) -> None:
    try:
        hooks.post_policy(env)
        for point in set(sources.points()) | {"on_error"}:
            hooks.timeout(env, point)
    except ConfigError as exc:
        result.problems.append(exc.message)
    if sources.sql and not sources.run_wide:
        try:
            engine_for(env).connection(env, name)
        except ConfigError as exc:
            result.problems.append(f"SQL hooks in {sources.directory / 'sql'} need a database: {exc.message}")


def _check_place(ctx: Context, result: CheckResult, env_file: Path, stack: Stack | None) -> None:
    run_wide = stack is None
    _check_bash(result, result.directory / "hooks.sh", run_wide)
    try:
        if run_wide:
            values = hookset.own_env_values(env_file, ctx.process_env)
            env = dict(ctx.root_env())
        else:
            values = hookset.own_env_values(env_file, ctx.root_env())
            env = ctx.stack_env(stack)
    except ConfigError as exc:
        result.problems.append(exc.message)
        return
    sources, problems = hookset.gather(result.directory, values, run_wide)
    for problem in problems:
        (result.warnings if ": ignored (not .sql)" in problem else result.problems).append(problem)
    if sources.declared:
        result.checked.append(f"{len(sources.declared)} declarative hook(s)")
    if sources.sql:
        result.checked.append(f"{len(sources.sql)} SQL hook director{'y' if len(sources.sql) == 1 else 'ies'}")
    _check_settings(result, env, sources, result.name)


def check(ctx: Context, stacks: list[Stack]) -> list[CheckResult]:
    """Check the root's run-wide hooks and each stack's hooks without running any."""
    root = ctx.root.resolve()
    results = [CheckResult("run-wide", root)]
    _check_place(ctx, results[0], root / ".env", None)
    for stack in stacks:
        results.append(CheckResult(stack.name, stack.dir.resolve()))
        _check_place(ctx, results[-1], stack.env_file, stack)
    return results


def render_check(results: list[CheckResult]) -> list[str]:
    lines = []
    for result in results:
        if not result.problems:
            what = ", ".join(result.checked) or "no hooks"
            lines.append(f"✓ {result.name}: {what}")
        else:
            lines.append(f"✗ {result.name}:")
            lines += [f"  ✗ {problem}" for problem in result.problems]
        lines += [f"  ! {warning}" for warning in result.warnings]
    return lines


def hooks_command(ctx: Context, stacks: list[Stack]) -> int:
    """``kompose PATTERN hooks``: every hook that would run, per stack and point (runs none)."""
    places = list_hooks(ctx, stacks)
    if ctx.options.json:
        ctx.console.emit_json(document("hooks", places=listing_json(places)))
    else:
        for line in render_listing(places):
            ctx.console.print(line)
    return 0


def hooks_check_command(ctx: Context, stacks: list[Stack]) -> int:
    """``kompose PATTERN hooks:check``: exit 1 when any hook place has a problem."""
    results = check(ctx, stacks)
    failed = [r for r in results if r.problems]
    if ctx.options.json:
        ctx.console.emit_json(document("hooks_check", places=[
            {"stack": None if r.directory == ctx.root.resolve() else r.name, "run_wide": r.directory == ctx.root.resolve(),
             "directory": str(r.directory), "problems": r.problems, "warnings": r.warnings, "checked": r.checked}
            for r in results]))
    else:
        for line in render_check(results):
            ctx.console.print(line)
        ctx.console.print(f"{len(results) - len(failed)} of {len(results)} hook places fine", "bold")
    return 1 if failed else 0
