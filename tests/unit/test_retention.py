"""Retention policy as a table: for a set of dump names and a policy, exactly which are kept and why."""

from __future__ import annotations

from datetime import datetime

import pytest

from kompose.errors import ConfigError, UsageError
from kompose.dumps.retention import Item, Policy, decide, policy_from


def item(stamp: str, good: bool = True, bad: bool = False) -> Item:
    """``"20260105_030000"`` -> the dump app_20260105_030000.sql taken then."""
    return Item(f"app_{stamp}.sql", datetime.strptime(stamp, "%Y%m%d_%H%M%S"), good and not bad, bad)


def kept(decisions) -> dict[str, str]:
    return {d.item.name.removeprefix("app_").removesuffix(".sql"): d.rule for d in decisions if d.keep}


CASES = [
    pytest.param(
        Policy(last=3),
        [item("20260101_030000"), item("20260102_030000"), item("20260103_030000"), item("20260104_030000"),
         item("20260105_030000")],
        {"20260105_030000": "keep-last #1", "20260104_030000": "keep-last #2", "20260103_030000": "keep-last #3"},
        id="keep-last keeps the newest N",
    ),
    pytest.param(
        Policy(daily=3),
        [item("20260101_030000"), item("20260101_150000"), item("20260102_030000"), item("20260102_150000"),
         item("20260102_210000"), item("20260103_030000"), item("20260104_030000")],
        {"20260104_030000": "keep-daily #1", "20260103_030000": "keep-daily #2", "20260102_210000": "keep-daily #3"},
        id="keep-daily keeps the newest dump of each day",
    ),
    pytest.param(
        Policy(daily=5),
        [item("20260101_030000"), item("20260101_090000"), item("20260101_150000"), item("20260102_030000")],
        {"20260102_030000": "keep-daily #1", "20260101_150000": "keep-daily #2",
         "20260101_030000": "keep-daily #3 (oldest)"},
        id="a rule short of periods also keeps the oldest dump",
    ),
    pytest.param(
        Policy(weekly=2),
        [item("20251228_030000"), item("20251229_030000"), item("20260102_030000"), item("20260105_030000")],
        # 2025-12-29 and 2026-01-02 are both in ISO week 2026-W01
        {"20260105_030000": "keep-weekly #1", "20260102_030000": "keep-weekly #2"},
        id="keep-weekly counts ISO weeks across the new year",
    ),
    pytest.param(
        Policy(monthly=3),
        [item("20260131_030000"), item("20260201_030000"), item("20260228_030000"), item("20260315_030000"),
         item("20260401_030000")],
        {"20260401_030000": "keep-monthly #1", "20260315_030000": "keep-monthly #2",
         "20260228_030000": "keep-monthly #3"},
        id="keep-monthly keeps the newest dump of each month",
    ),
    pytest.param(
        Policy(last=1, daily=2),
        [item("20260303_030000"), item("20260304_030000"), item("20260305_030000"), item("20260305_150000")],
        # the 5th's newest dump is kept by keep-last: the 5th counts as used, not as a daily
        {"20260305_150000": "keep-last #1", "20260304_030000": "keep-daily #1", "20260303_030000": "keep-daily #2"},
        id="a period whose newest dump is already kept does not count",
    ),
    pytest.param(
        Policy(daily=2, weekly=2, monthly=2),
        [item("20260115_030000"), item("20260220_030000"), item("20260302_030000"), item("20260308_030000"),
         item("20260309_030000"), item("20260310_030000")],
        {"20260310_030000": "keep-daily #1", "20260309_030000": "keep-daily #2",
         "20260308_030000": "keep-weekly #1", "20260220_030000": "keep-weekly #2",
         "20260115_030000": "keep-monthly #1"},
        id="daily, weekly and monthly together",
    ),
    pytest.param(
        Policy(last=2),
        [item("20260101_030000"), item("20260102_030000"), item("20260103_030000"),
         item("20260104_030000", good=False), item("20260105_030000", bad=True)],
        # the bad newest dump takes no place; the unverified one does, but is not good:
        # a second good dump is protected so that two good ones remain
        {"20260104_030000": "keep-last #1", "20260103_030000": "keep-last #2",
         "20260102_030000": "protected: fewer than 2 good dumps would remain"},
        id="keep-last good dumps remain even when newer ones are not good",
    ),
    pytest.param(
        Policy(daily=1),
        [item("20260104_030000"), item("20260105_030000"), item("20260105_150000", good=False)],
        {"20260105_150000": "keep-daily #1", "20260105_030000": "newest good dump"},
        id="the newest good dump is always kept",
    ),
    pytest.param(
        Policy(last=1),
        [item("20260101_030000", bad=True), item("20260102_030000", bad=True)],
        {},
        id="bad dumps go, and there is no good one to keep",
    ),
    pytest.param(
        Policy(last=3),
        [item("20260101_030000", good=False), item("20260102_030000", good=False),
         item("20260103_030000", good=False), item("20260104_030000", good=False)],
        {"20260104_030000": "keep-last #1", "20260103_030000": "keep-last #2", "20260102_030000": "keep-last #3"},
        id="unverified dumps follow the rules (removing one never lowers the number of good ones)",
    ),
    pytest.param(Policy(last=5), [], {}, id="no dumps"),
]


@pytest.mark.parametrize("policy, items, expected", CASES)
def test_policy_keeps_exactly(policy: Policy, items: list[Item], expected: dict[str, str]) -> None:
    decisions = decide(items, policy)
    assert kept(decisions) == expected
    assert [d.item.timestamp for d in decisions] == sorted((i.timestamp for i in items), reverse=True)
    for decision in decisions:
        if not decision.keep:
            assert decision.rule in ("no rule keeps it", "a bad dump")


@pytest.mark.parametrize(
    "options, env, expected",
    [
        ({}, {}, (Policy(last=1), "default")),
        ({"last": 3}, {"KOMPOSE_KEEP_DAILY": "7"}, (Policy(last=3), "command line")),
        ({}, {"KOMPOSE_KEEP_DAILY": "7", "KOMPOSE_KEEP_WEEKLY": "4"}, (Policy(daily=7, weekly=4), ".env (KOMPOSE_KEEP_*)")),
        ({"daily": 7, "monthly": None}, {}, (Policy(daily=7), "command line")),
        ({}, {"KOMPOSE_KEEP_LAST": " "}, (Policy(last=1), "default")),
    ],
)
def test_policy_sources(options, env, expected) -> None:
    assert policy_from({"last": None, "daily": None, "weekly": None, "monthly": None, **options}, env) == expected


def test_policy_errors_are_clear() -> None:
    with pytest.raises(ConfigError, match="KOMPOSE_KEEP_DAILY='seven' is not a whole number"):
        policy_from({}, {"KOMPOSE_KEEP_DAILY": "seven"})
    with pytest.raises(UsageError, match="keeps nothing"):
        policy_from({"last": 0, "daily": 0}, {})
    with pytest.raises(UsageError, match="--keep-weekly must not be negative"):
        policy_from({"weekly": -1}, {})
