"""db:import under faults: SIGKILL during the restore, a slow hook_pre_swap and right before the swap;
the database container stopped mid-import. The live database is never anything but whole."""

from tests.faults import scenarios
from tests.faults.conftest import TOTALS, assert_rows

IMPORT_TRIALS = 6


def test_sigkill_during_import_leaves_the_live_database_whole(lab, import_world, rng, report):
    assert_rows(report(scenarios.import_kills(lab, import_world, IMPORT_TRIALS, rng, TOTALS)))
    assert_rows(report(scenarios.import_final(lab, import_world)))


def test_container_stopped_during_restore(lab, import_world, report):
    assert_rows(report(scenarios.stop_during_import(lab, import_world, "during restore", TOTALS)))


def test_container_stopped_during_pre_swap_hook(lab, import_world, report):
    assert_rows(report(scenarios.stop_during_import(lab, import_world, "during hook_pre_swap", TOTALS)))


def test_next_run_says_what_it_cleaned(lab, import_world, report):
    assert_rows(report(scenarios.recover_reports(lab, import_world)))


def test_sigterm_during_import_cleans_up_at_once(lab, import_world, report):
    assert_rows(report(scenarios.sigterm_import(lab, import_world, TOTALS)))
