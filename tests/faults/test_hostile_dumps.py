"""Hostile and damaged dumps: an import touches only the temporary database; "verified" means checked."""

from tests.faults import hostile_dumps
from tests.faults.conftest import assert_rows


def test_hostile_and_damaged_dumps(lab, report):
    assert_rows(report(hostile_dumps.cases(lab)))
