"""Retention: which dumps a policy keeps, as a pure function of names, timestamps and health.

The rules are borg's (and borgmatic's): keep-last N keeps the N newest; keep-daily D keeps
the newest dump of each of the D most recent days that have one, then keep-weekly (ISO
weeks) and keep-monthly the same way. A period whose newest dump an earlier rule already
kept does not count for the later rule; a rule that finds fewer periods than it may keep
also keeps the oldest dump ("(oldest)"). Two safety rules come on top, because a backup
that prunes the only good copy is worse than none:

- the newest good dump is always kept;
- good dumps are kept, newest first, until at least keep-last of them remain.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Mapping, Sequence

from kompose.errors import ConfigError, UsageError

# (rule, how it names a dump's period), in the order the rules apply
_PERIODS: tuple[tuple[str, Callable[[datetime], str]], ...] = (
    ("daily", lambda t: t.strftime("%Y-%m-%d")),
    ("weekly", lambda t: t.strftime("%G-%V")),
    ("monthly", lambda t: t.strftime("%Y-%m")),
)
ENV_KEYS = {"last": "KOMPOSE_KEEP_LAST", "daily": "KOMPOSE_KEEP_DAILY", "weekly": "KOMPOSE_KEEP_WEEKLY",
            "monthly": "KOMPOSE_KEEP_MONTHLY"}


@dataclass(frozen=True)
class Policy:
    last: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0

    def __str__(self) -> str:
        parts = [f"keep-{rule} {count}" for rule, count in self.counts() if count]
        return ", ".join(parts) or "keep nothing but the newest good dump"

    def counts(self) -> tuple[tuple[str, int], ...]:
        return (("last", self.last), ("daily", self.daily), ("weekly", self.weekly), ("monthly", self.monthly))


@dataclass(frozen=True)
class Item:
    """One dump as retention sees it."""

    name: str
    timestamp: datetime
    good: bool = True  # verified (or complete without a manifest): counts for the safety rules
    bad: bool = False  # known to be unusable: no rule keeps it


@dataclass(frozen=True)
class Decision:
    item: Item
    keep: bool
    rule: str  # the rule that kept it, or why it goes


def decide(items: Sequence[Item], policy: Policy) -> list[Decision]:
    """Keep or remove each item, and the rule that decided; newest first."""
    ordered = sorted(items, key=lambda i: (i.timestamp, i.name), reverse=True)
    usable = [item for item in ordered if not item.bad]
    kept: dict[str, str] = {}

    if policy.last:
        for number, item in enumerate(usable[: policy.last], 1):
            kept[item.name] = f"keep-last #{number}"
    for rule, period_of in _PERIODS:
        count = getattr(policy, rule)
        if count:
            _keep_by_period(usable, rule, count, period_of, kept)

    good = [item for item in ordered if item.good]
    if good and good[0].name not in kept:
        kept[good[0].name] = "newest good dump"
    good_kept = sum(1 for item in good if item.name in kept)
    for item in good:
        if good_kept >= policy.last:
            break
        if item.name not in kept:
            kept[item.name] = f"protected: fewer than {policy.last} good dumps would remain"
            good_kept += 1

    return [
        Decision(item, item.name in kept, kept.get(item.name) or ("a bad dump" if item.bad else "no rule keeps it"))
        for item in ordered
    ]


def _keep_by_period(ordered: list[Item], rule: str, count: int, period_of, kept: dict[str, str]) -> None:
    last_period = None
    taken = 0
    item = None
    for item in ordered:
        period = period_of(item.timestamp)
        if period == last_period:
            continue
        last_period = period
        if item.name in kept:
            continue  # the period's newest dump is kept already: the period is used up
        taken += 1
        kept[item.name] = f"keep-{rule} #{taken}"
        if taken == count:
            return
    if item is not None and taken < count and item.name not in kept:
        kept[item.name] = f"keep-{rule} #{taken + 1} (oldest)"


# ------------------------------------------------------------------ configuration


def _count(value: str, key: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{key}={value!r} is not a whole number") from None
    if number < 0:
        raise ConfigError(f"{key}={value!r} must not be negative")
    return number


def policy_from(options: Mapping[str, int | None], env: Mapping[str, str]) -> tuple[Policy, str]:
    """The policy for one stack and where it came from.

    ``options`` are the command line's (last/daily/weekly/monthly, None when not given):
    any of them replaces the stack's .env policy as a whole (KOMPOSE_KEEP_*). Neither:
    keep-last 1. keep-last defaults to 0 once another rule is set (the newest good dump
    is kept anyway). Raises UsageError/ConfigError for negative numbers or a policy of zeros.
    """
    given = {rule: value for rule, value in options.items() if value is not None}
    for rule, value in given.items():
        if value < 0:
            raise UsageError(f"--keep-{rule} must not be negative")
    source = "command line"
    if not given:
        given = {rule: _count(env[key], key) for rule, key in ENV_KEYS.items() if env.get(key, "").strip()}
        source = ".env (KOMPOSE_KEEP_*)"
    if not given:
        return Policy(last=1), "default"
    policy = Policy(**{rule: given.get(rule, 0) for rule in ENV_KEYS})
    if not any(count for _, count in policy.counts()):
        raise (UsageError if source == "command line" else ConfigError)(
            f"retention policy from the {source} keeps nothing: set at least one rule above 0"
        )
    return policy, source
