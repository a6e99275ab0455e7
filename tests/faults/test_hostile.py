"""Issue 16: hostile input and faults, round two (see tests/faults/hostile.py)."""

from tests.faults import hostile
from tests.faults.conftest import TOTALS, assert_rows


def test_helper_config_never_holds_the_password(export_lab, report):
    assert_rows(report(hostile.helper_never_holds_the_password(export_lab)))


def test_sigterm_around_the_helpers_creation(export_lab, rng, report):
    assert_rows(report(hostile.sigterm_during_helper_creation(export_lab, 8, rng)))


def test_sighup_cleans_up_like_sigterm(export_lab, report):
    assert_rows(report(hostile.sighup_export(export_lab)))


def test_jobs_and_sigterm_leave_no_partial(export_lab, report):
    assert_rows(report(hostile.jobs_sigterm(export_lab)))


def test_in_place_import_interrupted_never_hangs(lab, import_world, rng, report):
    assert_rows(report(hostile.in_place_interrupts(lab, import_world, 6, rng, TOTALS)))


def test_closed_stdout_does_not_abort_a_backup(export_lab, report):
    assert_rows(report(hostile.closed_stdout(export_lab)))


def test_disk_full_during_a_zstd_export_says_so(export_lab, report):
    assert_rows(report(hostile.zstd_disk_full(export_lab)))


def test_secret_forms_are_masked(lab, report):
    assert_rows(report(hostile.secret_forms(lab)))


def test_export_on_a_locked_table_waits_then_names_the_session(export_lab, report):
    assert_rows(report(hostile.lock_wait(export_lab)))
