"""Stack discovery under a root, pattern selection and compose-file detection."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path

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


def discover(root: Path) -> list[Stack]:
    """Every direct subdirectory of ``root`` holding a compose file, sorted by name.

    Names starting with '.' or '_' are skipped, and so is a symlink that leads
    outside the root (a stack must live under the root it is managed from).
    """
    if not root.is_dir():
        raise UsageError(f"root {root} is not a directory")
    real_root = root.resolve()
    stacks = []
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        if entry.name.startswith((".", "_")) or not entry.is_dir():
            continue
        if entry.is_symlink() and not entry.resolve().is_relative_to(real_root):
            continue
        compose_file = compose_file_of(entry)
        if compose_file:
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
    chosen = [s for s in stacks if any(fnmatch.fnmatchcase(s.name, part) for part in parts)]
    unmatched = [part for part in parts if not any(fnmatch.fnmatchcase(s.name, part) for s in stacks)]
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
