"""Fixtures of the fault suite: one lab (a PostgreSQL container and a root) for the session,
and the table of what each scenario expected and observed, printed at the end."""

from __future__ import annotations

import random

import pytest

from tests.faults import scenarios, world
from tests.faults.world import Lab, Row

ROWS: list[Row] = []
TOTALS = scenarios.Totals()


@pytest.fixture(scope="session")
def lab(docker_engine, tmp_path_factory) -> Lab:
    opened = Lab.open(docker_engine, tmp_path_factory.mktemp("faults"))
    yield opened
    opened.close()


@pytest.fixture(scope="session")
def export_lab(lab: Lab) -> Lab:
    """The lab with the export scenarios' ~30 MB database and its stack."""
    scenarios.prepare_export(lab)
    return lab


@pytest.fixture(scope="session")
def import_world(lab: Lab) -> scenarios.ImportWorld:
    return scenarios.import_world(lab)


@pytest.fixture
def rng(request) -> random.Random:
    seed = random.randrange(1 << 30)
    print(f"random seed {seed}")
    return random.Random(seed)


@pytest.fixture
def report():
    """Record rows for the table; returns them so the test can assert on them."""

    def record(rows: list[Row] | Row) -> list[Row]:
        rows = [rows] if isinstance(rows, Row) else rows
        ROWS.extend(rows)
        return rows

    return record


def assert_rows(rows: list[Row]) -> None:
    bad = [row for row in rows if not row.ok]
    assert not bad, "\n" + world.render_table(bad)


def pytest_terminal_summary(terminalreporter) -> None:
    if not ROWS:
        return
    terminalreporter.section("kompose faults: case, expected, observed")
    terminalreporter.write_line(world.render_table(ROWS))
    terminalreporter.write_line(
        f"{TOTALS.incomplete_dumps} incomplete dumps, {TOTALS.changed_live} changed live databases, "
        f"{TOTALS.leaked_canaries} leaked canaries; {sum(r.ok for r in ROWS)} of {len(ROWS)} cases as expected"
    )
