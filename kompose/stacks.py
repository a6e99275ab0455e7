"""Stack discovery under a root, pattern selection and compose-file detection."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from kompose.errors import NoStackError, UsageError

COMPOSE_FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")


@dataclass(frozen=True)
class Stack:
    name: str
    dir: Path
    compose_file: Path

    @property
    def env_file(self) -> Path:
        return self.dir / ".env"

    @property
    def hooks_file(self) -> Path:
        return self.dir / "hooks.sh"


def compose_file_of(directory: Path) -> Path | None:
    """The compose file kompose uses for a directory, in order of preference, or None."""
    for name in COMPOSE_FILES:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    return None


# control characters (a newline would end a crontab line), ',' (the pattern's separator)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def name_problem(name: str) -> str | None:
    """Why kompose refuses ``name`` as a stack name, or None. Such a name cannot be passed
    safely in a pattern, a crontab line or a log line: control characters (a newline would
    write an extra crontab line), ',' (the pattern's separator), a leading '-' (an option),
    bytes that are not UTF-8. Glob characters are fine: a pattern part that is exactly a
    stack's name selects that stack only."""
    if any("\udc80" <= ch <= "\udcff" for ch in name):
        return "it is not UTF-8"
    if _CONTROL.search(name):
        return "it holds a control character (a newline?)"
    if "," in name:
        return "it holds ',' (the separator of stack patterns)"
    if name.startswith("-"):
        return "it starts with '-' (it would read as an option)"
    return None


def discover(root: Path, warn: Callable[[str], None] | None = None) -> list[Stack]:
    """Every direct subdirectory of ``root`` holding a compose file, sorted by name.

    Names starting with '.' or '_' are skipped, and so is a symlink that leads
    outside the root (a stack must live under the root it is managed from). A directory
    whose name kompose refuses (see name_problem) is skipped, and ``warn`` told so in one line.
    """
    if not root.is_dir():
        raise UsageError(f"root {root} is not a directory")
    real_root = root.resolve()
    stacks = []
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        if entry.name.startswith((".", "_")):
            continue
        try:
            if not entry.is_dir():
                continue
            if entry.is_symlink() and not entry.resolve().is_relative_to(real_root):
                continue
            compose_file = compose_file_of(entry)
        except OSError:  # a loop of symlinks, a directory we may not read
            continue
        if not compose_file:
            continue
        problem = name_problem(entry.name)
        if problem:
            if warn:
                warn(f"left out the directory {entry.name!r} under {root}: {problem}; rename it")
            continue
        stacks.append(Stack(entry.name, entry, compose_file))
    return stacks


def outside_links(root: Path) -> list[tuple[str, Path]]:
    """(name, target) of the symlinks in ``root`` that discovery skips because they lead outside it."""
    real_root = root.resolve()
    found = []
    for entry in sorted(root.iterdir(), key=lambda p: p.name) if root.is_dir() else []:
        if entry.is_symlink() and not entry.resolve().is_relative_to(real_root):
            found.append((entry.name, entry.resolve()))
    return found


def select(stacks: list[Stack], pattern: str, root: Path | None = None) -> list[Stack]:
    """Stacks matching a pattern: a name, a comma list, shell globs, or '*'.

    Keeps discovery order and lists each stack once.
    Raises UsageError for a pattern that reaches outside the root and
    NoStackError (naming the available stacks) when nothing matches or when an item of a comma
    list matches nothing (``blog,nosuch``); with ``root``
    it says so when the pattern names a symlink that leads outside the root.
    """
    parts = [part.strip() for part in pattern.split(",") if part.strip()]
    if not parts:
        raise UsageError("empty stack pattern")
    for part in parts:
        if "/" in part or part in (".", ".."):
            raise UsageError(f"stack pattern {part!r}: a stack is a directory name, not a path")
    names = {s.name for s in stacks}

    def matches(name: str, part: str) -> bool:  # a part that is a stack's exact name is that name, not a glob
        return name == part if part in names else fnmatch.fnmatchcase(name, part)

    chosen = [s for s in stacks if any(matches(s.name, part) for part in parts)]
    unmatched = [part for part in parts if not any(matches(s.name, part) for s in stacks)]
    if chosen and unmatched:  # every item of a list must match: a cron line must not skip a renamed stack
        available = ", ".join(s.name for s in stacks)
        raise NoStackError(f"no stack matches {', '.join(repr(p) for p in unmatched)} (in {pattern!r}); "
                           f"available: {available}")
    if not chosen:
        for name, target in outside_links(root) if root else []:
            if any(fnmatch.fnmatchcase(name, part) for part in parts):
                raise NoStackError(f"stack {name} is a symlink to {target}, outside the root {root}: "
                                   "kompose manages only stacks under its root")
        available = ", ".join(s.name for s in stacks) or "none"
        raise NoStackError(f"no stack matches {pattern!r}; available: {available}")
    return chosen
