"""Shell completion (Typer's: ``kompose --install-completion``): the pattern completes to the stacks
under the root (``--root``, else $KOMPOSE_ROOT, else the current directory) and to the commands
that take no pattern; the command completes to kompose's commands and compose's."""

from __future__ import annotations

import os
from pathlib import Path


def _root(ctx) -> Path:
    root = (getattr(ctx, "params", None) or {}).get("root")
    return Path(root or os.environ.get("KOMPOSE_ROOT") or ".")


def complete_pattern(ctx, incomplete: str) -> list[str]:
    from kompose.cli.commands import ROOT_COMMANDS
    from kompose.stacks import discover

    try:
        names = [stack.name for stack in discover(_root(ctx))]
    except Exception:  # completion never fails loudly: no root, no stacks
        names = []
    head, _, last = incomplete.rpartition(",")  # "auth,bl" completes the last item
    prefix = f"{head}," if head else ""
    found = [prefix + name for name in names if name.startswith(last)]
    if not head:
        found += [name for name in ROOT_COMMANDS if name.startswith(incomplete)]
    return found


def complete_command(ctx, incomplete: str) -> list[str]:
    from kompose.cli.commands import PATTERN_COMMANDS
    from kompose.cli.words import COMPOSE_COMMANDS

    words = list(PATTERN_COMMANDS) + sorted(COMPOSE_COMMANDS)
    return [word for word in words if word.startswith(incomplete)]
