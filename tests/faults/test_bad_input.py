"""At least 40 kinds of bad input: each gets one clear error line, a non-zero exit, and changes nothing."""

import pytest

from tests.faults import bad_input
from tests.faults.conftest import assert_rows

CASES = bad_input.cases("kfbad-")


def test_there_are_at_least_40_cases():
    assert len(CASES) >= 40


@pytest.fixture(scope="module")
def fixtures(lab, tmp_path_factory):
    return bad_input.prepare(lab, tmp_path_factory.mktemp("bad-input"))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(fixtures, case, report):
    assert_rows(report(bad_input.run_case(fixtures, case)))
