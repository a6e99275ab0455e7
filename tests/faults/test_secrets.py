"""A canary DB_PASSWORD through every command: never in output, plans, JSON or any process's argv."""

from tests.faults import scenarios
from tests.faults.conftest import TOTALS, assert_rows


def test_canary_password_never_leaks(lab, tmp_path, report):
    assert_rows(report(scenarios.secrets_everywhere(lab, tmp_path, TOTALS)))
