"""Overlapping runs of one stack: the per-stack lock, and no corruption."""

from tests.faults import scenarios
from tests.faults.conftest import assert_rows


def test_overlapping_exports(lab, report):
    assert_rows(report(scenarios.overlapping_exports(lab)))


def test_overlapping_imports(lab, import_world, report):
    assert_rows(report(scenarios.overlapping_imports(lab, import_world)))
