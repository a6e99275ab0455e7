"""db:export under faults: SIGKILL at random moments, SIGTERM, the container stopped or removed, a full disk."""

import pytest

from tests.faults import scenarios
from tests.faults.conftest import TOTALS, assert_rows

EXPORT_TRIALS = 20


def test_sigkill_at_random_moments_never_leaves_an_incomplete_dump(export_lab, rng, report):
    assert_rows(report(scenarios.export_kills(export_lab, EXPORT_TRIALS, rng, TOTALS)))


def test_sigterm_mid_export_removes_the_partial(export_lab, report):
    assert_rows(report(scenarios.sigterm_export(export_lab)))


def test_container_stopped_mid_export_is_a_clear_error(export_lab, report):
    assert_rows(report(scenarios.stop_during_export(export_lab)))


def test_container_removed_mid_export_is_a_clear_error(export_lab, report):
    assert_rows(report(scenarios.removed_during_export(export_lab)))


@pytest.mark.parametrize("kind", list(scenarios.DISK_CASES))
def test_disk_full_or_read_only(export_lab, kind, report):
    assert_rows(report(scenarios.disk_full(export_lab, kind)))
